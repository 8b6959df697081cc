/**
 * Errors the client rejects with. Match on `code` (stable) rather than on
 * the wording; a server's refusal keeps the reply it came in.
 */
import type { Message } from '../core/protocol.ts';

export const ClientErrorCodes = {
  /** The server answered the request with `{"command":…,"error":…}`. */
  REPLY: 'MIST_ERR_REPLY',
  /** The connection could not be opened, or was lost before the reply came. */
  CONNECTION: 'MIST_ERR_CONNECTION',
  /** A WebSocket server refused the token (HTTP 401 before the upgrade). */
  UNAUTHORIZED: 'MIST_ERR_UNAUTHORIZED',
  /** The client is closed, or is reconnecting and cannot send now. */
  NOT_CONNECTED: 'MIST_ERR_NOT_CONNECTED',
  /** No reply within `requestTimeoutMs`. */
  TIMEOUT: 'MIST_ERR_TIMEOUT',
  /** The URL's scheme is not one the client speaks. */
  URL: 'MIST_ERR_URL',
} as const;

export type ClientErrorCode = (typeof ClientErrorCodes)[keyof typeof ClientErrorCodes];

export class MistClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'MistClientError';
  }
}

/** The server refused a request; `message` is the server's `error`, `reply` the whole reply. */
export class MistReplyError extends MistClientError {
  readonly command: string;

  constructor(readonly reply: Message) {
    super(ClientErrorCodes.REPLY, String(reply.error));
    this.name = 'MistReplyError';
    this.command = reply.command;
  }
}
