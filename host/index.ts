/**
 * The mist package: embed a server, write plugins. This is the whole public
 * API (test/plugin-api.test.ts pins its runtime names); docs/plugins.md
 * says what each kind of plugin gets and may use.
 */
// tsyringe throws on load unless the Reflect polyfill came first, and this may be the first module loaded.
import 'reflect-metadata';

// Plugins of every kind.
export { definePlugin, type MistPlugin, type PluginApi, type SchemeRegistrar } from './api.ts';
export type { LifecycleHook } from './hooks.ts';
export type { OptionSpec, OptionsOf, OptionsShape, OptionType } from './shape.ts';
export type { Logger } from '../core/logger.ts';
export type { MetricsService } from './metrics.ts';
export { CommandError, ErrorCodes, MistError, type ErrorCode } from '../core/errors.ts';
export type { CommandResult, RefusalKind } from '../core/result.ts';

// Commands.
export { command, type CommandOptions } from '../core/commands.ts';
export { dataJson, parseMessage, type Frame, type Framing, type Message, type Request, type RequestFields } from '../core/protocol.ts';
export type { AccessService, BrokerService, Connection, ConnectionsService, ListenerConnection } from '../core/services.ts';
export type { ResumeOutcome } from '../core/replay.ts';
export type { Identity } from '../core/auth.ts';

// Listeners.
export type { Listener, ListenerContext, ListenerFactory } from './listener.ts';
export type { Pausable } from './read-turns.ts';
export type { ConnectionInfo, Sink } from '../core/session.ts';
export type { Limits } from '../core/limits.ts';
export { WEBSOCKET_PATH } from '../core/wire.ts';
export type { OutputQueue } from '../core/flush.ts';

// Authenticators and backplanes.
export type { Authenticator, AuthenticatorFactory, Grant, TokenTags } from '../core/authenticator.ts';
export type { Backplane, BackplaneContext, BackplaneFactory, BackplaneStream, StreamContext } from '../core/backplane.ts';

// Embedding a server.
export { startServer } from './start.ts';
export { MistServer, type ServerOptions } from './server.ts';
export type { ConfigFile } from './config-schema.ts';
export type { MistConfig } from './config.ts';
