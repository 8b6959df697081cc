/**
 * The WebSocket endpoint (`GET /subscribe/websocket`) that the ws and http
 * listeners both serve: one JSON message per frame, handed to the session
 * like a TCP line. Not a plugin.
 *
 * - Origin: an upgrade from a web page the server does not allow
 *   (`allowedOrigins`) gets HTTP 403 and no WebSocket, before anything else.
 * - Auth: a token in `X-AUTH-TOKEN` or `?x-auth-token=` is checked before
 *   the upgrade; a wrong one gets HTTP 401 (after the failure delay), too
 *   many checks from the address at once 429, and no WebSocket. Without a
 *   token the connection opens unauthenticated and may still send `auth`
 *   (core/guard.ts closes it if it does not in time).
 * - Frames over `maxMessageBytes` get an error reply, then a close with
 *   1009. ws itself reads no frame over twice that (or the limit plus
 *   64 KiB, whichever is more) and closes with 1009 at once, without a reply.
 * - A frame under way is ws's to hold, not mist's: it counts against no
 *   server-wide budget and has no timeout. It is bounded per connection by
 *   that size, and its pieces by {@link MIN_PIECE_BYTES}.
 * - Binary frames are read as UTF-8 text through the same validation
 *   (invalid UTF-8 gets an error reply); replies are always text frames.
 * - Liveness: every `pingIntervalMs` each peer is pinged; one that has
 *   answered none of the last two pings is terminated (unless its input is
 *   paused by backpressure, when its pongs cannot be read). A dead peer is
 *   so reaped within two to three intervals.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type ConnectionInfo,
  type Frame,
  type Framing,
  type Identity,
  type ListenerContext,
  type OutputQueue,
  type ListenerConnection,
  type Pausable,
  type Sink,
  WEBSOCKET_PATH,
} from '../../host/index.ts';
import { identityOf, peerOf, refuseUpgrade } from './web.ts';

/**
 * ws keeps a frame under way in the pieces it was read in, each costing a
 * few hundred bytes besides its own: with ws's default (262,144 pieces at
 * most) a frame sent a byte per packet held about 90 MB. Here a frame of the
 * largest size may come in pieces of this many bytes on average, no
 * smaller: one in more pieces is refused (close code 1008), so that a frame
 * under way holds at most about twice that size.
 */
const MIN_PIECE_BYTES = 512;

/** How long a closing WebSocket may take to flush before it is terminated. */
const END_TIMEOUT_MS = 2000;
/** WebSocket close codes (RFC 6455): a normal close, */
const CLOSE_NORMAL = 1000;
/** a message too big to process, */
const CLOSE_TOO_BIG = 1009;
/** a server going down. */
const CLOSE_GOING_AWAY = 1001;

export interface WebSocketOptions {
  /** `ws` or `wss`: the transport sessions report. */
  transport: string;
  /** Ping every this many milliseconds; default 30 000 (`?ping=MS` on the listener URI). */
  pingIntervalMs: number;
}

interface Peer {
  session: ListenerConnection;
  sink: WebSocketSink;
  /** Pings sent since the last pong. */
  missed: number;
}

export class WebSocketEndpoint {
  private readonly server: WebSocketServer;
  private readonly peers = new Map<WebSocket, Peer>();
  private readonly timer: NodeJS.Timeout;
  private closing = false;
  private lastSweep = Date.now();

  constructor(
    private readonly context: ListenerContext,
    private readonly options: WebSocketOptions,
  ) {
    const limit = context.limits.maxMessageBytes;
    const maxPayload = limit + Math.max(limit, 64 * 1024);
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload,
      maxBufferedChunks: Math.ceil(maxPayload / MIN_PIECE_BYTES),
    });
    this.timer = setInterval(() => this.sweep(), options.pingIntervalMs);
    this.timer.unref();
  }

  /** Whether `path` is the endpoint's. */
  serves(path: string): boolean {
    return path === WEBSOCKET_PATH;
  }

  /** Takes over an HTTP upgrade request for {@link WEBSOCKET_PATH}. Never throws. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    socket.on('error', (err) => this.context.logger.debug({ err }, 'websocket upgrade error'));
    const info = peerOf(req, this.options.transport);
    const refusal = this.context.origins.refusal(req.headers.origin, info, url.pathname);
    if (refusal !== undefined) return refuseUpgrade(socket, 403, refusal);
    this.authenticate(req, socket, head, url, info).catch((err: unknown) => {
      this.context.logger.error({ err }, 'websocket upgrade failed');
      socket.destroy();
    });
  }

  /**
   * Takes no more WebSockets; those open are to close with 1001 (going
   * away) when the server ends their sessions. Resolves once all are
   * closed. Idempotent.
   */
  async drain(): Promise<void> {
    this.closing = true;
    for (const { sink } of this.peers.values()) if (sink.closeCode === CLOSE_NORMAL) sink.closeCode = CLOSE_GOING_AWAY;
    await this.allClosed();
  }

  /** Terminates every WebSocket and resolves once all are closed. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    const closed = this.allClosed();
    for (const ws of this.peers.keys()) ws.terminate();
    await closed;
    this.server.close();
  }

  private allClosed(): Promise<unknown> {
    return Promise.all([...this.peers.keys()].map((ws) => new Promise((resolve) => ws.once('close', resolve))));
  }

  private async authenticate(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, info: ConnectionInfo): Promise<void> {
    const result = await identityOf(req, url, this.context, info);
    if (this.closing) return void socket.destroy();
    if (result.refused !== undefined) return refuseUpgrade(socket, result.status, result.refused);
    this.server.handleUpgrade(req, socket, head, (ws) => this.accept(ws, info, socket, result.identity));
  }

  private accept(ws: WebSocket, info: ConnectionInfo, socket: Duplex, identity: Identity | undefined): void {
    if (this.closing) return void ws.terminate();
    // Frames go straight to the socket, coalesced with the listener's other connections; ws sends only its
    // control frames (pings, pongs, the close), each whole between two of ours.
    const output = this.context.output((bytes) => {
      if (ws.readyState === WebSocket.OPEN && !socket.destroyed) socket.write(bytes);
    });
    // ws reads the socket; the server's read turns pause ws, as does the session.
    const sink = new WebSocketSink(ws, socket, output, this.context.shareReading(socket, ws));
    const session = this.context.open(sink, info, identity);
    const peer: Peer = { session, sink, missed: 0 };
    this.peers.set(ws, peer);
    const limit = this.context.limits.maxMessageBytes;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (data.length > limit) {
        sink.closeCode = CLOSE_TOO_BIG;
        return session.rejectOversized();
      }
      session.receive(isBinary ? data : data.toString());
    });
    ws.on('pong', () => {
      peer.missed = 0;
    });
    ws.on('error', (err) => this.context.logger.debug({ err, session: session.id }, 'websocket error'));
    ws.on('close', () => {
      this.peers.delete(ws);
      session.closed();
    });
  }

  /** Reaps peers that answered none of the last two pings, and pings the rest. */
  private sweep(): void {
    const now = Date.now();
    // A late sweep means this process was too busy to read the pongs in time: nobody is reaped for that.
    const late = now - this.lastSweep > this.options.pingIntervalMs * 1.5;
    this.lastSweep = now;
    for (const [ws, peer] of this.peers) {
      if (peer.missed >= 2 && !peer.sink.paused && !late) {
        this.context.logger.debug({ session: peer.session.id }, 'websocket peer did not answer ping: terminated');
        ws.terminate();
        continue;
      }
      peer.missed++;
      ws.ping();
    }
  }
}

/**
 * A frame as the server's WebSocket text frame (RFC 6455 §5.2): FIN, opcode
 * 1, unmasked, the length in 7, 16 or 64 bits, header and JSON in one
 * buffer. Built once per message (`Frame.framed`): every subscriber is sent
 * the same bytes. Never compressed: the server offers no permessage-deflate
 * (and a message sent uncompressed would be valid even where it is agreed).
 */
const webSocketFrame: Framing = (frame) => {
  const length = frame.byteLength;
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const bytes = Buffer.allocUnsafe(header + length);
  bytes[0] = 0x81;
  if (header === 2) {
    bytes[1] = length;
  } else if (header === 4) {
    bytes[1] = 126;
    bytes.writeUInt16BE(length, 2);
  } else {
    bytes[1] = 127;
    bytes.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    bytes.writeUInt32BE(length >>> 0, 6);
  }
  bytes.write(frame.json, header, 'utf8');
  return bytes;
};

/**
 * Writes a session's frames as WebSocket text frames, coalesced like TCP
 * lines: queued on `output`, framed once per message, written to the socket
 * in one write per flush, replies and deliveries in order.
 */
class WebSocketSink implements Sink {
  /** The close code `end` sends: 1000, 1009 after an oversized frame, 1001 when the server shuts down. */
  closeCode = CLOSE_NORMAL;
  paused = false;

  constructor(
    private readonly ws: WebSocket,
    /** The upgraded socket: frames are written to it, and its drain events read (ws has none of its own). */
    private readonly socket: Duplex,
    private readonly output: OutputQueue,
    /** The session's hold on ws's reading, beside the server's read turns. */
    private readonly reading: Pausable,
  ) {}

  write(frame: Frame): void {
    this.output.push(frame.framed(webSocketFrame));
  }

  /** Queued here and not yet flushed, plus what the socket (and ws, for its control frames) holds. */
  get bufferedBytes(): number {
    return this.output.length + this.ws.bufferedAmount;
  }

  end(): void {
    // What is queued goes before the close frame: nothing may follow it.
    this.output.flush();
    this.ws.close(this.closeCode);
    // Input may be paused (a drain): the peer's close frame must be read for the closing handshake to end.
    this.ws.resume();
    // A peer that never answers the close would hold the socket open for ws's 30 s.
    const timer = setTimeout(() => this.ws.terminate(), END_TIMEOUT_MS).unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.output.clear();
    this.ws.terminate();
  }

  pause(): void {
    this.paused = true;
    this.reading.pause();
  }

  resume(): void {
    this.paused = false;
    this.reading.resume();
  }

  whenDrained(callback: () => void): void {
    // Rare (replies piling up): hand the queue over now rather than wait for the flush.
    this.output.flush();
    if (this.socket.writableNeedDrain) this.socket.once('drain', callback);
    else queueMicrotask(callback);
  }
}
