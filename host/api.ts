/**
 * The plugin API. A plugin is a module whose default export is a
 * {@link MistPlugin}; mist checks the options its config entry gives it
 * against the plugin's `options` shape, then calls its `register` with a
 * {@link PluginApi} at start-up. Built-in listeners, authenticators,
 * backplanes and commands are plugins of exactly this kind, and so the best
 * examples. Lifecycle: see hooks.ts; the guide: docs/plugins.md.
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
import type { AuthenticatorFactory } from '../core/authenticator.ts';
import type { BackplaneFactory } from '../core/backplane.ts';
import type { ListenerFactory } from './listener.ts';
import type { Logger } from '../core/logger.ts';
import type { AccessService, BrokerService, ConnectionsService } from '../core/services.ts';
import { TOKENS } from '../core/tokens.ts';
import type { MistConfig } from './config.ts';
import { METRICS, type Services } from './container.ts';
import type { LifecycleHook, PluginHooks } from './hooks.ts';
import type { MetricsService } from './metrics.ts';
import type { SchemeRegistry } from './registry.ts';
import type { OptionsOf, OptionsShape } from './shape.ts';

/** Registers things of one kind under URI schemes. */
export interface SchemeRegistrar<Factory> {
  register(scheme: string, factory: Factory): void;
}

/** What a plugin's `register` receives. Registrations are recorded under the plugin's name. */
export interface PluginApi {
  readonly config: MistConfig;
  /** A logger whose lines carry the plugin's name. */
  readonly logger: Logger;
  /** Publish, subscribe, unsubscribe; counts. */
  readonly broker: BrokerService;
  /** The open connections: counts, and each one's identity and subscriptions. */
  readonly connections: ConnectionsService;
  /** Authenticating a connection; tokens and their tags, changed with effect on live connections. */
  readonly access: AccessService;
  /** The server's Prometheus registry, served at `GET /metrics`: add your metrics to it. */
  readonly metrics: MetricsService;
  readonly listeners: SchemeRegistrar<ListenerFactory>;
  readonly authenticators: SchemeRegistrar<AuthenticatorFactory>;
  readonly backplanes: SchemeRegistrar<BackplaneFactory>;
  /**
   * Adds the `@command` methods of an object (made by the plugin, which
   * hands it the services and options it needs), or of a class whose
   * constructor takes no arguments.
   */
  readonly commands: { add(handlers: object): void };
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
   * The options it accepts (see host/shape.ts): checked before `register`,
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

/** The URI-scheme registries plugins register into. */
export interface Registries {
  readonly listeners: SchemeRegistry<ListenerFactory>;
  readonly authenticators: SchemeRegistry<AuthenticatorFactory>;
  readonly backplanes: SchemeRegistry<BackplaneFactory>;
}

/** What the server lends its plugins, to make each one's API from. */
export interface PluginHost {
  readonly config: MistConfig;
  readonly logger: Logger;
  readonly services: Services;
  readonly registries: Registries;
  readonly hooks: PluginHooks;
}

/** The API handed to the plugin `name`. */
export function pluginApi(host: PluginHost, name: string): PluginApi {
  const { services, registries, hooks } = host;
  const registrar = <F>(registry: SchemeRegistry<F>): SchemeRegistrar<F> => ({
    register: (scheme, factory) => registry.register(scheme, factory, name),
  });
  const commands = services.resolve(TOKENS.Commands);
  return {
    config: host.config,
    logger: host.logger.child({ plugin: name }),
    broker: services.resolve(TOKENS.Broker),
    connections: services.resolve(TOKENS.Connections),
    access: services.resolve(TOKENS.Access),
    metrics: services.resolve(METRICS),
    listeners: registrar(registries.listeners),
    authenticators: registrar(registries.authenticators),
    backplanes: registrar(registries.backplanes),
    commands: { add: (handlers) => commands.add(handlers, name) },
    onStart: (hook) => hooks.add(name, 'start', hook),
    onReady: (hook) => hooks.add(name, 'ready', hook),
    onClose: (hook) => hooks.add(name, 'close', hook),
  };
}
