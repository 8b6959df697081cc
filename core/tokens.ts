/**
 * Dependency-injection tokens: every core service is resolved by one of
 * these. Constructor parameters name their token with `@inject(TOKENS.X)`
 * because tsx (esbuild) emits no decorator metadata to inject by type.
 *
 * A token carries the type of its service, so resolving it
 * (`Services.resolve`, host/container.ts) needs neither a type argument nor
 * a cast.
 */
import type { Access } from './access.ts';
import type { Auth } from './auth.ts';
import type { Broker } from './broker.ts';
import type { CommandRegistry } from './commands.ts';
import type { Connections } from './connections.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { AuthGuard } from './guard.ts';
import type { History } from './history.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { PendingInput } from './pending-input.ts';

declare const service: unique symbol;

/** A token for a service of type `T`: a symbol, as `@inject` takes, that also carries `T` for the type checker. */
export type Token<T> = symbol & { readonly [service]?: T };

export function token<T>(name: string): Token<T> {
  return Symbol(name);
}

export const TOKENS = {
  /** The connection limits (`config.limits`). */
  Limits: token<Limits>('mist.Limits'),
  Logger: token<Logger>('mist.Logger'),
  Broker: token<Broker>('mist.Broker'),
  Connections: token<Connections>('mist.Connections'),
  Dispatcher: token<Dispatcher>('mist.Dispatcher'),
  /** Authentication and permissions. */
  Auth: token<Auth>('mist.Auth'),
  /** Token checks slowed per address, and the deadline to authenticate. */
  Guard: token<AuthGuard>('mist.Guard'),
  /** What commands may change about who a connection is, with effect on live connections. */
  Access: token<Access>('mist.Access'),
  Commands: token<CommandRegistry>('mist.Commands'),
  /** The retained messages and ids (core/history.ts); off with `history: false`. */
  History: token<History>('mist.History'),
  /** The unfinished input of every line-protocol connection: its budget and line timeout. */
  PendingInput: token<PendingInput>('mist.PendingInput'),
} as const;
