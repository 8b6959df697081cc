/** The mist package: embed a server, write plugins. */
// tsyringe throws on load unless the Reflect polyfill came first, and this may be the first module loaded.
import 'reflect-metadata';
export { Auth, type Identity, type Role } from './auth.ts';
export type { Authenticator, AuthenticatorFactory } from './authenticator.ts';
export type { Backplane, BackplaneContext, BackplaneFactory } from './backplane.ts';
export { Broker, type BrokerHooks } from './broker.ts';
export { Cluster, type BackplaneState, type ClusterStats, type ClusterStatus } from './cluster.ts';
export { command, CommandRegistry, type CommandHandler, type CommandOptions } from './commands.ts';
export { buildConfig, loadConfig, type MistConfig } from './config.ts';
export { Connections } from './connections.ts';
export { CommandError, ErrorCodes, MistError } from './errors.ts';
export { FlushScheduler, type Flushable } from './flush.ts';
export { LineFramer, type LineHandler } from './framing.ts';
export { serveSocket, SocketSink, type SocketSessionOptions } from './socket-session.ts';
export type { Limits, SlowConsumerPolicy } from './limits.ts';
export type { Listener, ListenerContext, ListenerFactory } from './listener.ts';
export type { Logger, LogLevel } from './logger.ts';
export { SubscriptionIndex } from './matcher.ts';
export { Metrics } from './metrics.ts';
export { definePlugin, type MistPlugin, type PluginApi, type SchemeRegistrar } from './plugin.ts';
export type { LifecycleHook } from './plugin-hooks.ts';
export { checkOptions, OptionsError, type OptionSpec, type OptionsOf, type OptionsShape, type OptionType } from './plugin-options.ts';
export { dataJson, Frame, type Message, type Request } from './protocol.ts';
export { MistServer, startServer } from './server.ts';
export type { ConnectionInfo, Session, Sink } from './session.ts';
export { canonicalTags, compareTagSets } from './tags.ts';
export { TOKENS } from './tokens.ts';
// Plugins decorate with mist's own tsyringe, so that their classes and the
// server's container share one registry of type information.
export { inject, injectable } from 'tsyringe';
// The client library (SPEC §11).
export {
  ClientErrorCodes,
  connect,
  dataText,
  MistClient,
  MistClientError,
  MistReplyError,
  WEBSOCKET_PATH,
  type ClientErrorCode,
  type ClientState,
  type ConnectOptions,
  type Delivery,
  type MistClientEvents,
  type ReconnectOptions,
  type WhoReply,
} from './client/index.ts';
