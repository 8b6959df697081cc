/**
 * Errors with stable codes, so that tests and users can match on `code`
 * rather than on wording (the way Fastify names its `FST_ERR_*`).
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

/** A start-up or configuration failure; its message is meant for the person running mist. */
export class MistError extends Error {
  /** The config key (and flag) the error is about, when one is: `listeners`, `authenticator`… */
  readonly key: string | undefined;

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
 * Thrown by a command handler to refuse a request: the client gets
 * `{"command":…,"error":message}` and nothing changes. `kind` says why, for
 * transports that answer with a status of their own (HTTP); `close` closes
 * the connection once the refusal is sent.
 */
export class CommandError extends Error {
  readonly close: boolean;

  constructor(
    message: string,
    readonly kind: RefusalKind = 'invalid',
    options: { close?: boolean } = {},
  ) {
    super(message);
    this.name = 'CommandError';
    this.close = options.close ?? false;
  }
}
