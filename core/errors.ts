/**
 * mist's errors, three kinds: a {@link MistError} stops start-up (a bad
 * config, a plugin that fails), with a stable code so that tests and users
 * can match on `code` rather than on wording (the way Fastify names its
 * `FST_ERR_*`); a {@link CommandError} refuses one request, and the client
 * gets its message; a {@link ShapeError} says which value of a config file
 * or of a plugin's options does not fit, and becomes a MistError naming
 * where it came from.
 */
import type { RefusalKind } from './result.ts';

export const ErrorCodes = {
  /** The config file or a flag has a bad key or value. */
  CONFIG: 'MIST_ERR_CONFIG',
  /** A URI names a scheme no plugin registered. */
  UNKNOWN_SCHEME: 'MIST_ERR_UNKNOWN_SCHEME',
  /** Two plugins registered the same scheme. */
  DUPLICATE_SCHEME: 'MIST_ERR_DUPLICATE_SCHEME',
  /** Two plugins declared the same command. */
  DUPLICATE_COMMAND: 'MIST_ERR_DUPLICATE_COMMAND',
  /** A plugin could not be loaded or failed to register. */
  PLUGIN: 'MIST_ERR_PLUGIN',
  /** The authenticator could not be opened (database unreachable, corrupt file…). */
  AUTHENTICATOR: 'MIST_ERR_AUTHENTICATOR',
  /** The cluster backplane could not be created (bad URI for its plugin). */
  BACKPLANE: 'MIST_ERR_BACKPLANE',
  /** A listener could not start (address in use, bad address…). */
  LISTEN: 'MIST_ERR_LISTEN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

// Registered symbols marking mist's errors, so that `instanceof` knows them from
// any copy of this file: a plugin whose `mist` resolved to a copy of its own (the
// one in its folder, installed for its tests) throws that copy's CommandError,
// and the server must still take it for a refusal, not a fault.
const MIST_ERROR = Symbol.for('mist.MistError');
const COMMAND_ERROR = Symbol.for('mist.CommandError');

/** `value instanceof cls`, where an instance of `marked` is whatever carries `mark`. */
function isInstance(cls: Function, marked: Function, mark: symbol, value: unknown): boolean {
  if (cls !== marked) return Function.prototype[Symbol.hasInstance].call(cls, value);
  return typeof value === 'object' && value !== null && mark in value;
}

/** A start-up or configuration failure; its message is meant for the person running mist. */
export class MistError extends Error {
  /** The config key (and flag) the error is about, when one is: `listeners`, `authenticator`… */
  readonly key: string | undefined;
  readonly [MIST_ERROR] = true;

  static [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, MistError, MIST_ERROR, value);
  }

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions & { key?: string },
  ) {
    super(message, options);
    this.name = 'MistError';
    this.key = options?.key;
  }
}

/**
 * A refused request: the client gets `{"command":…,"error":message}` and
 * nothing changes. Thrown by a command handler, by the authenticator for
 * what the caller got wrong, and by the protocol for a request no command
 * may run. `kind` says why, for transports that answer with a status of
 * their own (HTTP); `close` closes the connection once the refusal is sent;
 * `command` is what the reply names when the refusal comes before any
 * command runs (the protocol's): the input's, or `error`.
 */
export class CommandError extends Error {
  readonly close: boolean;
  readonly command: string | undefined;
  readonly [COMMAND_ERROR] = true;

  static [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, CommandError, COMMAND_ERROR, value);
  }

  constructor(
    message: string,
    readonly kind: RefusalKind = 'invalid',
    options: { close?: boolean; command?: string } = {},
  ) {
    super(message);
    this.name = 'CommandError';
    this.close = options.close ?? false;
    this.command = options.command;
  }
}

/** A value that does not fit its shape; `key` is its path (`limits.maxTags`, `options.every`). */
export class ShapeError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key} ${problem}`);
    this.name = 'ShapeError';
  }
}
