/**
 * What the client needs of a transport: send one JSON text, receive JSON
 * texts, learn when the connection ends. TCP frames them as lines,
 * WebSocket as text frames; the client never sees the difference.
 */
import type { ConnectionOptions } from 'node:tls';
import { WEBSOCKET_PATH } from '../core/wire.ts';
import { ClientErrorCodes, MistClientError } from './errors.ts';

export interface TransportHandlers {
  /** One message's JSON text, as the server sent it. */
  message(json: string): void;
  /** The connection ended (called once, after it was open); `error` says why when it was not a clean close. */
  closed(error?: Error): void;
}

export interface TransportOptions {
  /** Sent as the `X-AUTH-TOKEN` header where the transport has headers (WebSocket). */
  token?: string;
  connectTimeoutMs: number;
  /** Longest message accepted from the server, in bytes. */
  maxMessageBytes: number;
  /** TLS options for `tls://` and `wss://` (e.g. `ca`, or `rejectUnauthorized: false` for a self-signed development server). */
  tls?: ConnectionOptions;
}

export interface Transport {
  /** Whether the token went with the handshake (a WebSocket header); otherwise the client sends `auth`. */
  readonly sentToken: boolean;
  send(json: string): void;
  /** Ends the connection, gracefully when possible; resolves once it is closed. Idempotent. */
  close(): Promise<void>;
}

/** Opens a connection to `url`; resolves once it is open. */
export type TransportOpener = (url: URL, options: TransportOptions, handlers: TransportHandlers) => Promise<Transport>;

/** Default ports: the server's default listeners. */
export const DEFAULT_PORTS: Record<string, number> = { 'tcp:': 1445, 'tls:': 1445, 'ws:': 8888, 'wss:': 8888 };

/** A connection failure's message, naming the URL. */
export function connectionError(url: URL, err: Error): MistClientError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ECONNREFUSED' ? 'connection refused' : err.message;
  return new MistClientError(ClientErrorCodes.CONNECTION, `cannot connect to ${displayUrl(url)}: ${reason}`, { cause: err });
}

/** The URL without a token in its query, for messages. */
export function displayUrl(url: URL): string {
  const shown = new URL(url.href);
  for (const key of [...shown.searchParams.keys()]) if (key.toLowerCase() === 'x-auth-token') shown.searchParams.set(key, '***');
  return shown.href.replace(/\/$/, '');
}

/** A ws:// or wss:// URL with the default port and the server's WebSocket path filled in where it gives none. */
export function webSocketUrl(url: URL): URL {
  const target = new URL(url.href);
  if (target.pathname === '/' || target.pathname === '') target.pathname = WEBSOCKET_PATH;
  if (!target.port) target.port = String(DEFAULT_PORTS[url.protocol]);
  return target;
}
