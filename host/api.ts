/**
 * The plugin API. A plugin is a module whose default export is a
 * {@link MistPlugin}; mist checks the options its config entry gives it
 * against the plugin's `options` shape, then calls its `register` with a
 * {@link PluginApi} at start-up. Built-in listeners, authenticators and
 * commands are plugins of exactly this kind, and so the best examples.
 * Lifecycle: see plugin-hooks.ts; the guide: docs/plugins.md.
 *
 * @example
 * ```ts
 * import { definePlugin } from 'mist';
 * export default definePlugin({
 *   name: 'echo',
 *   options: { prefix: { type: 'string', default: '' } },
 *   register(api, options) {
 *     api.commands.add(new EchoCommands(options.prefix));
 *     api.onClose(() => api.logger.info('echo closed'));
 *   },
 * });
 * ```
 */
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { AuthenticatorFactory } from '../core/authenticator.ts';
import type { BackplaneFactory } from '../core/backplane.ts';
import type { Broker } from '../core/broker.ts';
import type { CommandRegistry } from '../core/commands.ts';
import type { MistConfig } from './config.ts';
import type { ListenerFactory } from '../core/listener.ts';
import type { Logger } from '../core/logger.ts';
import type { LifecycleHook, PluginHooks } from './hooks.ts';
import type { OptionsOf, OptionsShape } from './shape.ts';
import type { SchemeRegistry } from './registry.ts';
import { TOKENS } from '../core/tokens.ts';

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
  /** The server's broker (also `container.resolve(TOKENS.Broker)`): publish, subscribe, stats. */
  readonly broker: Broker;
  readonly listeners: SchemeRegistrar<ListenerFactory>;
  readonly authenticators: SchemeRegistrar<AuthenticatorFactory>;
  readonly backplanes: SchemeRegistrar<BackplaneFactory>;
  /**
   * Adds the `@command` methods of a class (resolved through the container,
   * so its constructor gets core services by `@inject(TOKENS.…)`) or of an
   * object already made (say, one built with the plugin's options).
   */
  readonly commands: { add(handlers: InjectionToken<object> | object): void };
  /** Runs after every plugin registered, before listeners bind. Throwing stops start-up. */
  onStart(hook: LifecycleHook): void;
  /** Runs once every listener is bound (`server.urls` are real). Throwing stops start-up. */
  onReady(hook: LifecycleHook): void;
  /** Runs when the server closes, after its listeners, in reverse order; also after a failed start. */
  onClose(hook: LifecycleHook): void;
}

export interface MistPlugin<Options = unknown> {
  /** Names the plugin in logs and errors. */
  name: string;
  /**
   * The options it accepts (see shape.ts): checked before `register`,
   * which then gets them with defaults filled in. Unknown keys are refused.
   */
  options?: OptionsShape;
  /**
   * Checks (and may transform) the options, after `options` if both are
   * given; throw to refuse them, naming the key. Its result reaches `register`.
   */
  validate?(options: unknown): Options;
  register(api: PluginApi, options: Options): void | Promise<void>;
}

/**
 * Types a plugin definition (it returns its argument). With an `options`
 * shape, `register` gets options typed by it.
 */
export function definePlugin<const S extends OptionsShape>(
  plugin: Omit<MistPlugin<OptionsOf<S>>, 'options' | 'validate'> & { options: S; validate?(options: OptionsOf<S>): OptionsOf<S> },
): MistPlugin<OptionsOf<S>>;
export function definePlugin<Options = unknown>(plugin: MistPlugin<Options>): MistPlugin<Options>;
export function definePlugin(plugin: MistPlugin<unknown>): MistPlugin<unknown> {
  return plugin;
}

/** The API handed to the plugin `name`. */
export function pluginApi(container: DependencyContainer, name: string, hooks: PluginHooks): PluginApi {
  const registrar = <F>(token: symbol): SchemeRegistrar<F> => {
    const registry = container.resolve<SchemeRegistry<F>>(token);
    return { register: (scheme, factory) => registry.register(scheme, factory, name) };
  };
  const commands = container.resolve<CommandRegistry>(TOKENS.Commands);
  return {
    container,
    config: container.resolve<MistConfig>(TOKENS.Config),
    logger: container.resolve<Logger>(TOKENS.Logger).child({ plugin: name }),
    get broker() {
      return container.resolve<Broker>(TOKENS.Broker);
    },
    listeners: registrar(TOKENS.Listeners),
    authenticators: registrar(TOKENS.Authenticators),
    backplanes: registrar(TOKENS.Backplanes),
    commands: { add: (handlers) => commands.add(handlers, name) },
    onStart: (hook) => hooks.add(name, 'start', hook),
    onReady: (hook) => hooks.add(name, 'ready', hook),
    onClose: (hook) => hooks.add(name, 'close', hook),
  };
}
