/**
 * A stream socket (TCP, TLS, a Unix socket…) speaking newline-delimited
 * JSON, wired to a session: what every line-protocol listener does with a
 * connection once it has accepted it. Listeners reach it as
 * `context.serveSocket` (listener.ts); the tcp and tls listeners use it, and
 * so does the listener `mist new` generates.
 */
import type { Socket } from 'node:net';
import type { OutputQueue } from '../core/flush.ts';
import { LineFramer } from '../core/framing.ts';
import type { ListenerContext } from './listener.ts';
import type { InputRefusalReason, PendingInput, WatchedInput } from '../core/pending-input.ts';
import type { Frame } from '../core/protocol.ts';
import type { Pausable } from './read-turns.ts';
import type { ListenerConnection } from '../core/services.ts';
import type { ConnectionInfo, Sink } from '../core/session.ts';
import { KEEPALIVE_MS } from '../core/wire.ts';

/** How long a closing connection may take to flush before it is destroyed. */
const END_TIMEOUT_MS = 2000;

type SocketContext = Pick<ListenerContext, 'open' | 'limits' | 'logger' | 'output' | 'shareReading'>;

/**
 * `serveSocket` for one listener: the writes of all its connections are
 * coalesced (`context.output`), their reading shares the server's turns
 * (`context.shareReading`), and their unfinished lines count against the
 * server's `pending` input.
 */
export function socketServer(context: SocketContext, pending: PendingInput): ListenerContext['serveSocket'] {
  return (socket, info) => serveSocket(socket, info, context, pending);
}

/**
 * Opens a session for `socket` and feeds it the lines the socket reads; the
 * session closes with the socket.
 */
function serveSocket(socket: Socket, info: ConnectionInfo, context: SocketContext, pending: PendingInput): ListenerConnection {
  const { limits } = context;
  // Writes are coalesced here already (flush.ts): Nagle's algorithm would only add delay.
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_MS);
  const reading = context.shareReading(socket, socket);
  const sink = new SocketSink(
    socket,
    context.output((bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    }),
    reading,
  );
  const session = context.open(sink, info);
  const refuse = (reason: InputRefusalReason, error: string): void => {
    pending.refused(reason, session);
    session.refuseInput(error);
  };
  const framer = new LineFramer(
    limits.maxMessageBytes,
    {
      line: (bytes) => session.receive(bytes),
      oversized: () => session.rejectOversized(),
      overBudget: () => refuse('budget', 'server input budget exhausted: no room for more of this unfinished line (maxPendingInputBytes)'),
    },
    pending,
  );
  // A line is not the client's to finish while the server does not read (an asynchronous command runs, replies
  // pile up): its wait counts while the socket flows, from when it last resumed; and not at all once the session is closed.
  let readingSince = performance.now();
  socket.on('resume', () => (readingSince = performance.now()));
  const input: WatchedInput = {
    get waitingSince() {
      return session.isOpen && !socket.isPaused() ? Math.max(framer.unfinishedSince, readingSince) : NaN;
    },
    timedOut() {
      framer.close();
      refuse('lineTimeout', `line unfinished for ${limits.lineTimeoutMs} ms`);
    },
  };
  pending.watch(input);
  socket.on('data', (chunk: Buffer) => {
    if (session.isOpen) return framer.push(chunk);
    // Closed (its input refused, or ended): what still comes is dropped, and nothing more is read, so that a
    // client sending on costs nothing; the socket closes at the peer's end or is destroyed (SocketSink.end).
    socket.pause();
  });
  // The peer sends nothing more: the session closes once it has answered what came.
  socket.on('end', () => session.inputEnded());
  // Resets and the like end the connection; 'close' follows and cleans up.
  socket.on('error', (err) => context.logger.debug({ err, session: session.id }, `${info.transport} connection error`));
  socket.once('close', () => {
    framer.close();
    pending.unwatch(input);
    session.closed();
  });
  return session;
}

/**
 * Writes a session's frames to its socket as newline-terminated lines,
 * coalesced: frames queue on `output` and go out in one write per flush, in
 * the order they were queued, replies and deliveries alike.
 */
class SocketSink implements Sink {
  constructor(
    private readonly socket: Socket,
    private readonly output: OutputQueue,
    /** The session's hold on the socket's reading, beside the server's read turns. */
    private readonly reading: Pausable,
  ) {}

  write(frame: Frame): void {
    this.output.push(frame.line);
  }

  /** Queued here and not yet flushed, plus what the socket holds that the kernel has not taken. */
  get bufferedBytes(): number {
    return this.output.length + this.socket.writableLength;
  }

  end(): void {
    this.output.flush();
    this.socket.end();
    // Input may be paused (a drain): read on, to see the peer's end (serveSocket stops at any more data).
    this.socket.resume();
    // A peer that never reads would hold the socket open forever.
    const timer = setTimeout(() => this.socket.destroy(), END_TIMEOUT_MS);
    this.socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.output.clear();
    this.socket.destroy();
  }

  pause(): void {
    this.reading.pause();
  }

  resume(): void {
    this.reading.resume();
  }

  whenDrained(callback: () => void): void {
    // Rare (replies piling up): hand the queue over now rather than wait for the flush.
    this.output.flush();
    if (this.socket.writableNeedDrain) this.socket.once('drain', callback);
    else queueMicrotask(callback);
  }
}
