/**
 * The plugin API. A plugin is a module whose default export is a
 * {@link MistPlugin}; mist calls its `register` with a {@link PluginApi}
 * at start-up. Built-in listeners and commands are plugins of exactly this
 * kind, and so the best examples.
 *
 * @example
 * ```ts
 * import { definePlugin } from 'mist';
 * export default definePlugin({
 *   name: 'echo',
 *   register(api) {
 *     api.commands.add(EchoCommands);
 *   },
 * });
 * ```
 */
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { AuthenticatorFactory } from './authenticator.ts';
import type { BackplaneFactory } from './backplane.ts';
import type { CommandRegistry } from './commands.ts';
import type { MistConfig } from './config.ts';
import type { ListenerFactory } from './listener.ts';
import type { Logger } from './logger.ts';
import type { SchemeRegistry } from './registry.ts';
import { TOKENS } from './tokens.ts';

/** Registers things of one kind under URI schemes. */
export interface SchemeRegistrar<Factory> {
  register(scheme: string, factory: Factory): void;
}

/** What a plugin's `register` receives. Registrations are recorded under the plugin's name. */
export interface PluginApi {
  /** The server's container: core services by `TOKENS` (broker, connections, config…). */
  readonly container: DependencyContainer;
  readonly config: MistConfig;
  /** A logger whose lines carry the plugin's name. */
  readonly logger: Logger;
  readonly listeners: SchemeRegistrar<ListenerFactory>;
  readonly authenticators: SchemeRegistrar<AuthenticatorFactory>;
  readonly backplanes: SchemeRegistrar<BackplaneFactory>;
  /** Adds a class of `@command` methods, resolved through the container. */
  readonly commands: { add(handlers: InjectionToken<object>): void };
}

export interface MistPlugin<Options = unknown> {
  /** Names the plugin in logs and errors. */
  name: string;
  register(api: PluginApi, options: Options): void | Promise<void>;
}

/** Types a plugin definition (it returns its argument). */
export function definePlugin<Options = unknown>(plugin: MistPlugin<Options>): MistPlugin<Options> {
  return plugin;
}

/** The API handed to the plugin `name`. */
export function pluginApi(container: DependencyContainer, name: string): PluginApi {
  const registrar = <F>(token: symbol): SchemeRegistrar<F> => {
    const registry = container.resolve<SchemeRegistry<F>>(token);
    return { register: (scheme, factory) => registry.register(scheme, factory, name) };
  };
  const commands = container.resolve<CommandRegistry>(TOKENS.Commands);
  return {
    container,
    config: container.resolve<MistConfig>(TOKENS.Config),
    logger: container.resolve<Logger>(TOKENS.Logger).child({ plugin: name }),
    listeners: registrar(TOKENS.Listeners),
    authenticators: registrar(TOKENS.Authenticators),
    backplanes: registrar(TOKENS.Backplanes),
    commands: { add: (handlers) => commands.add(handlers, name) },
  };
}
