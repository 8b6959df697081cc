/**
 * The listener seam: a listener turns bytes into frames and frames into
 * bytes for one transport. It never interprets a command.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Identity } from '../core/auth.ts';
import type { OutputQueue } from '../core/flush.ts';
import type { Limits } from '../core/limits.ts';
import type { Logger } from '../core/logger.ts';
import type { RequestFields } from '../core/protocol.ts';
import type { CommandResult } from '../core/result.ts';
import type { ListenerConnection } from '../core/services.ts';
import type { ConnectionInfo, Sink } from '../core/session.ts';
import type { Pausable } from './read-turns.ts';

/** What the core gives a listener. */
export interface ListenerContext {
  /**
   * Opens a session for a new connection; the listener then feeds it frames.
   * `identity` is what a token given with the connection itself (an HTTP
   * header) granted; without it the connection starts unauthenticated.
   */
  open(sink: Sink, info: ConnectionInfo, identity?: Identity): ListenerConnection;
  /**
   * Runs one request for `session` and resolves to its result, sending
   * nothing, for a transport whose requests are not frames of its input and
   * that answers them in its own terms (SSE's subscriptions, answered with a
   * status). The request goes through the same checks as a frame. Not for a
   * session that is also fed frames: their order would not be kept.
   */
  run(connection: ListenerConnection, request: RequestFields): Promise<CommandResult>;
  /**
   * Runs one request as a connection of its own (an HTTP publish): a session
   * opened for it with `identity` (as for {@link open}), closed once it is done.
   */
  runOnce(info: ConnectionInfo, request: RequestFields, identity?: Identity): Promise<CommandResult>;
  /** Authentication, for transports that carry a token outside the protocol. */
  readonly auth: {
    /** Whether connections must authenticate. */
    readonly required: boolean;
    /**
     * The identity `token`, given by a client at `peer`, grants, or
     * undefined for a wrong token (answer 401) — after the failure delay,
     * and within the per-address limit of checks under way (docs/auth.md).
     * Rejects with a `CommandError` of kind `throttled` when `peer`'s
     * address has too many checks under way (answer 429 and close), or
     * `unavailable` when the authenticator's store is unavailable (answer
     * 503). Never log the token.
     */
    identify(token: string, peer: ConnectionInfo): Promise<Identity | undefined>;
  };
  /**
   * Which web pages may use the server (`allowedOrigins`), for listeners a
   * browser may reach: check a request's Origin header before anything else.
   */
  readonly origins: {
    /** Why a request to `path` with this Origin header is refused (answer 403 with it), once logged and counted; undefined when allowed. */
    refusal(origin: string | undefined, peer: ConnectionInfo, path: string): string | undefined;
    /** The CORS headers for the answer to an allowed request with this Origin header. */
    cors(origin: string | undefined): Record<string, string>;
    /** The CORS headers for a read-only answer given to anyone: they name the page only when its origin is allowed. */
    readCors(origin: string | undefined): Record<string, string>;
  };
  readonly limits: Limits;
  readonly logger: Logger;
  /**
   * A connection's output, coalesced: bytes pushed on the queue go to
   * `write` in one buffer per flush, which serves every connection of the
   * listener at once (`limits.flushIntervalMs`; docs/architecture.md, "Hot
   * path"). A sink queues here what it is given and counts the queue's
   * `length` in its `bufferedBytes`.
   */
  output(write: (bytes: Buffer) => void): OutputQueue;
  /**
   * Shares the server's reading fairly with `socket` (docs/operations.md,
   * "Reading shared among connections"): counts what it reads, and pauses
   * `input` — the socket, or what reads from it — for a turn or more when
   * it has read more than its share of a busy event-loop turn. Pause and
   * resume `input` for the connection's own reasons through what this
   * returns, not directly, so that neither hold undoes the other.
   * `serveSocket` does this itself.
   */
  shareReading(socket: Duplex, input: Pausable): Pausable;
  /**
   * Serves a stream socket (TCP, TLS, a Unix socket…) speaking mist's
   * newline-delimited JSON: opens its session, frames its input by line and
   * writes its output coalesced with the listener's other sockets. Open the
   * server with `allowHalfOpen`, so a client that ends its side still gets
   * the replies to what it sent.
   */
  serveSocket(socket: Socket, info: ConnectionInfo): ListenerConnection;
}

export interface Listener {
  /** Starts accepting connections; resolves once bound. */
  listen(): Promise<void>;
  /** The URI actually served, with the real port when 0 was asked. Valid after `listen`. */
  readonly url: string;
  /**
   * Shutting down, gracefully: stops accepting connections (and requests),
   * and resolves once every connection it holds has closed. The server
   * meanwhile drains their sessions: each stops reading, is answered what it
   * sent, and is then ended (`Sink.end()`: flush, close). {@link close}
   * follows, at the latest `limits.shutdownTimeoutMs` after; a listener
   * without `drain` is closed without waiting. Idempotent.
   */
  drain?(): Promise<void>;
  /** Stops accepting and closes every connection it holds, at once. Idempotent. */
  close(): Promise<void>;
}

/** Builds a listener for a URI whose scheme it was registered under. */
export type ListenerFactory = (url: URL, context: ListenerContext) => Listener;
