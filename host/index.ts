/** The mist package: embed a server, write plugins. */
// tsyringe throws on load unless the Reflect polyfill came first, and this may be the first module loaded.
import 'reflect-metadata';
export { Auth, type Identity, type Role } from '../core/auth.ts';
export type { Authenticator, AuthenticatorFactory } from '../core/authenticator.ts';
export type { Backplane, BackplaneContext, BackplaneFactory } from '../core/backplane.ts';
export { Broker, type BrokerHooks } from '../core/broker.ts';
export { Cluster, type BackplaneState, type ClusterStats, type ClusterStatus } from '../core/cluster.ts';
export { command, CommandRegistry, type CommandHandler, type CommandOptions } from '../core/commands.ts';
export { buildConfig, loadConfig, type MistConfig } from './config.ts';
export { Connections } from '../core/connections.ts';
export { CommandError, ErrorCodes, MistError } from '../core/errors.ts';
export type { Limits, SlowConsumerPolicy } from '../core/limits.ts';
export type { Listener, ListenerContext, ListenerFactory } from '../core/listener.ts';
export { WEBSOCKET_PATH } from '../core/wire.ts';
export type { Logger, LogLevel } from '../core/logger.ts';
export { SubscriptionIndex } from '../core/matcher.ts';
export { Metrics } from './metrics.ts';
export { definePlugin, type MistPlugin, type PluginApi, type SchemeRegistrar } from './api.ts';
export type { LifecycleHook } from './hooks.ts';
export { checkOptions, type OptionSpec, type OptionsOf, type OptionsShape, type OptionType } from './shape.ts';
export { dataJson, Frame, type Message, type Request } from '../core/protocol.ts';
export { MistServer, type ServerOptions } from './server.ts';
export { startServer } from './start.ts';
export type { ConnectionInfo, Session, Sink } from '../core/session.ts';
export { canonicalTags, compareTagSets } from '../core/tags.ts';
export { TOKENS } from '../core/tokens.ts';
// Plugins decorate with mist's own tsyringe, so that their classes and the
// server's container share one registry of type information.
export { inject, injectable } from 'tsyringe';
