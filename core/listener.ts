/**
 * The listener seam: a listener turns bytes into frames and frames into
 * bytes for one transport. It never interprets a command.
 */
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { ConnectionInfo, Session, Sink } from './session.ts';

/** What the core gives a listener. */
export interface ListenerContext {
  /** Opens a session for a new connection; the listener then feeds it frames. */
  open(sink: Sink, info: ConnectionInfo): Session;
  readonly limits: Limits;
  readonly logger: Logger;
}

export interface Listener {
  /** Starts accepting connections; resolves once bound. */
  listen(): Promise<void>;
  /** The URI actually served, with the real port when 0 was asked. Valid after `listen`. */
  readonly url: string;
  /** Stops accepting and closes every connection it holds. Idempotent. */
  close(): Promise<void>;
}

/** Builds a listener for a URI whose scheme it was registered under. */
export type ListenerFactory = (url: URL, context: ListenerContext) => Listener;
