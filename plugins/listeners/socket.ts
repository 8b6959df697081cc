/**
 * A stream socket (TCP, TLS, a Unix socket…) speaking newline-delimited
 * JSON, wired to a session: what every line-protocol listener does with a
 * connection once it has accepted it. The tcp and tls listeners use it, and
 * so does the listener `mist new` generates.
 */
import type { Socket } from 'node:net';
import { LineFramer, type Flushable, type FlushScheduler, type Frame, type ListenerContext, type Session, type Sink } from '../../host/index.ts';

/** How long a closing connection may take to flush before it is destroyed. */
const END_TIMEOUT_MS = 2000;

export interface SocketSessionOptions {
  /** The listener's scheme, for the session and for logs: `tcp`, `tls`… */
  transport: string;
  /** The peer, for logs. */
  remote: string;
  /** Coalesces this socket's writes with the listener's other connections'. */
  flusher: FlushScheduler;
}

/**
 * Opens a session for `socket` and feeds it the lines the socket reads; the
 * session closes with the socket. Open the socket with `allowHalfOpen`, so a
 * client that ends its side still gets the replies to what it sent.
 *
 * @example
 * ```ts
 * const flusher = new FlushScheduler(context.limits.flushIntervalMs);
 * createServer({ allowHalfOpen: true }, (socket) =>
 *   serveSocket(socket, context, { transport: 'unix', remote: path, flusher }));
 * ```
 */
export function serveSocket(socket: Socket, context: ListenerContext, options: SocketSessionOptions): Session {
  const { transport, remote, flusher } = options;
  const session = context.open(new SocketSink(socket, flusher), { transport, remote });
  const framer = new LineFramer(context.limits.maxMessageBytes, {
    line: (bytes) => session.receive(bytes),
    oversized: () => session.rejectOversized(),
  });
  socket.on('data', (chunk: Buffer) => framer.push(chunk));
  // The peer sends nothing more: the session closes once it has answered what came.
  socket.on('end', () => session.inputEnded());
  // Resets and the like end the connection; 'close' follows and cleans up.
  socket.on('error', (err) => context.logger.debug({ err, session: session.id }, `${transport} connection error`));
  socket.once('close', () => session.closed());
  return session;
}

/**
 * Writes a session's frames to its socket as newline-terminated lines,
 * coalesced: frames queue here and go out in one write per flush (see
 * {@link FlushScheduler}), in the order they were queued, replies and
 * deliveries alike.
 */
export class SocketSink implements Sink, Flushable {
  /** Lines queued since the last flush, in order. */
  private queue: Buffer[] = [];
  /** Their total length. */
  private queued = 0;

  constructor(
    private readonly socket: Socket,
    private readonly flusher: FlushScheduler,
  ) {}

  write(frame: Frame): void {
    const line = frame.line;
    if (this.queued === 0) this.flusher.add(this);
    else this.flusher.touch();
    this.queue.push(line);
    this.queued += line.length;
  }

  flush(): void {
    if (this.queued === 0) return;
    const queue = this.queue;
    // One buffer, one write: copying a few hundred bytes costs far less than a syscall or a writev entry each.
    const bytes = queue.length === 1 ? queue[0]! : Buffer.concat(queue, this.queued);
    queue.length = 0;
    this.queued = 0;
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Queued here and not yet flushed, plus what the socket holds that the kernel has not taken. */
  get bufferedBytes(): number {
    return this.queued + this.socket.writableLength;
  }

  end(): void {
    this.flush();
    this.socket.end();
    // A peer that never reads would hold the socket open forever.
    const timer = setTimeout(() => this.socket.destroy(), END_TIMEOUT_MS);
    this.socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.queue.length = 0;
    this.queued = 0;
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  whenDrained(callback: () => void): void {
    // Rare (replies piling up): hand the queue over now rather than wait for the flush.
    this.flush();
    if (this.socket.writableNeedDrain) this.socket.once('drain', callback);
    else queueMicrotask(callback);
  }
}
