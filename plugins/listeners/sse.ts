/**
 * Server-Sent Events at `GET /subscribe/events?tags=a,b`. Not a plugin.
 *
 * - Each `tags` parameter is one subscription (comma-separated tags):
 *   `?tags=a,b&tags=c` holds {a,b} and {c}, as two `subscribe` commands
 *   would. Without any, 400.
 * - Each subscription is run as a `subscribe` request, so limits and
 *   permissions are those of every transport: a refusal is answered, by its
 *   kind, before the stream starts (401 no/wrong token, 429 too many token
 *   checks from the address, 403 tags not permitted, 400 bad tags).
 * - The listener has checked the request's Origin; the stream's CORS
 *   headers name only an allowed page.
 * - Each delivery is `event: publish` with the message's JSON as `data`
 *   and its history id as `id:`; a `: heartbeat` comment every
 *   `heartbeatMs` keeps proxies from closing an idle stream.
 * - A `Last-Event-ID` header (as a browser's EventSource sends when it
 *   reconnects) or a `lastEventId` parameter resumes from that id, as the
 *   `resume` command does, once the subscriptions are made: what was missed
 *   comes first, after an `event: gap` when history did not reach back to
 *   it. The replay is gathered before the stream starts (references to the
 *   retained messages), then written as fast as the client reads it, live
 *   messages queued behind it.
 * - A stream opened with a token that expires ends then, after an
 *   `event: auth` whose data is `{"command":"auth","error":"token expired; closing"}`.
 * - A slow reader is under the same drop/disconnect policy as any
 *   connection, measured by the response's buffered bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo, Frame, Framing, ListenerContext, OutputQueue, RequestFields, ListenerConnection, Sink } from '../../host/index.ts';
import { authenticate, sendError, statusOf } from './web.ts';

export const EVENTS_PATH = '/subscribe/events';

/** The query parameter that resumes as the `Last-Event-ID` header does (for clients that cannot set headers on the first request). */
export const LAST_EVENT_ID_PARAM = 'lastEventId';

const HEARTBEAT = Buffer.from(': heartbeat\n\n');
/** Sent before a replay that history could not reach back for; with data, or EventSource would not dispatch it. */
const GAP = Buffer.from('event: gap\ndata: {"command":"resume","tags":[],"data":"gap"}\n\n');

export interface EventStreamOptions {
  context: ListenerContext;
  heartbeatMs: number;
  /** The client, as the stream's session reports it. */
  peer: ConnectionInfo;
  /** The CORS headers of every answer. */
  cors: Record<string, string>;
  /** Given the session of a stream that started (the listener ends it if a drain began meanwhile). */
  opened: (session: ListenerConnection) => void;
}

/** Serves one SSE request until the client goes away or the server closes. */
export async function serveEvents(req: IncomingMessage, res: ServerResponse, url: URL, options: EventStreamOptions): Promise<void> {
  const { context, heartbeatMs, peer, cors, opened } = options;
  const subscriptions = url.searchParams.getAll('tags').map((value) => value.split(',').map((tag) => tag.trim()));
  if (subscriptions.length === 0 || subscriptions.some((tags) => tags.some((tag) => tag === ''))) {
    return sendError(res, 400, 'give the tags to subscribe to: /subscribe/events?tags=a,b (repeat tags= for more subscriptions)', cors);
  }
  const auth = await authenticate(req, url, context, peer);
  if (auth.refused !== undefined) return sendError(res, auth.status, auth.refused, { ...cors, connection: 'close' });
  if (req.destroyed) return;

  const sink = new EventStreamSink(res, cors, context.output(streamWriter(res)));
  const session = context.open(sink, peer, auth.identity);
  res.on('close', () => session.closed());
  const requests: RequestFields[] = subscriptions.map((tags) => ({ command: 'subscribe', tags }));
  const lastId = lastEventId(req, url);
  if (lastId !== undefined) requests.push({ command: 'resume', data: lastId });
  let gap = false;
  for (const request of requests) {
    const result = await context.run(session, request);
    if (!session.isOpen || res.destroyed) return;
    if (!result.ok) {
      session.closed();
      return sendError(res, statusOf(result.kind), result.error, cors);
    }
    gap ||= result.reply?.data === 'gap';
  }
  sink.start(gap);
  opened(session);
  // A stream whose subscriptions were all revoked (unset, unregister) can never receive again: end it.
  const heartbeat = setInterval(() => (session.subscriptions.size === 0 ? session.end() : sink.heartbeat()), heartbeatMs);
  res.on('close', () => clearInterval(heartbeat));
}

/** The id to resume from: the `Last-Event-ID` header, else the `lastEventId` parameter; an empty one is none. */
function lastEventId(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['last-event-id'];
  return (Array.isArray(header) ? header[0] : header) || url.searchParams.get(LAST_EVENT_ID_PARAM) || undefined;
}

/**
 * Hands a flush's events to the client. Once the stream owns its socket
 * (its headers have gone out, and no earlier response on the connection is
 * still being sent) they go straight to the socket as one HTTP chunk:
 * Node's http layer costs about as much CPU per `res.write` as the write
 * syscall itself (it corks the socket and writes the chunk in four pieces;
 * `npm run bench -- writes`). Otherwise through the response.
 */
function streamWriter(res: ServerResponse): (bytes: Buffer) => void {
  return (bytes) => {
    // Once ended, nothing may follow the body's last chunk (a heartbeat due before the stream closes).
    if (res.destroyed || res.writableEnded) return;
    const socket = res.socket;
    if (socket && res.headersSent && res.chunkedEncoding) socket.write(chunk(bytes));
    else res.write(bytes);
  };
}

/**
 * The bytes `chunk` framed last, and their chunk. A flush of one event hands
 * every stream the same buffer (the message's event, built once), so the
 * streams after the first reuse its chunk rather than each framing a copy:
 * one allocation per message instead of one per subscriber.
 */
let lastBytes: Buffer | undefined;
let lastChunk: Buffer | undefined;

/** `bytes` as one chunk of HTTP's chunked encoding (its size in hex, CRLF, the bytes, CRLF), in one buffer. */
export function chunk(bytes: Buffer): Buffer {
  if (bytes === lastBytes) return lastChunk!;
  const head = `${bytes.length.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(head.length + bytes.length + 2);
  const at = framed.write(head, 'latin1') + bytes.copy(framed, head.length);
  framed[at] = 0x0d;
  framed[at + 1] = 0x0a;
  lastBytes = bytes;
  lastChunk = framed;
  return framed;
}

/** A frame's JSON starts with its command (deliveries and replies are built command first); the event is named after it. */
const COMMAND = /^\{"command":"(\w+)"/;

/**
 * A session's deliveries as an event stream. Until {@link start}, while the
 * subscriptions are made and a replay gathered, it holds back what it is
 * given, in order; then it writes that as the client reads it, and what
 * comes meanwhile after it. From then on deliveries are coalesced like TCP
 * lines: one write per flush.
 */
class EventStreamSink implements Sink {
  /** What waits to be written, from `next` on; undefined once all is written. */
  private backlog: Frame[] | undefined = [];
  private next = 0;
  /** Frames before it came before the start (the replay gathered): the buffer limit does not count them. */
  private early = -1;
  /** Bytes of those that came after, which it does. */
  private lateBytes = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly cors: Record<string, string>,
    private readonly output: OutputQueue,
  ) {}

  /** Sends the headers, `event: gap` when the replay has a gap, then what was held back; from now on deliveries stream. */
  start(gap: boolean): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tell nginx and the like not to buffer the stream.
      'x-accel-buffering': 'no',
      ...this.cors,
    });
    this.res.write(': subscribed\n\n');
    if (gap) this.res.write(GAP);
    this.early = this.backlog!.length;
    this.writeBacklog();
  }

  /** Writes the backlog until the response's buffer is full, then again once it drains. */
  private readonly writeBacklog = (): void => {
    const backlog = this.backlog!;
    while (!this.res.writableNeedDrain && this.next < backlog.length) {
      const frame = backlog[this.next]!;
      if (this.next++ >= this.early) this.lateBytes -= frame.byteLength;
      this.res.write(frame.framed(sseEvent));
    }
    if (this.next < backlog.length) this.res.once('drain', this.writeBacklog);
    else this.backlog = undefined;
  };

  heartbeat(): void {
    this.output.push(HEARTBEAT);
  }

  write(frame: Frame): void {
    if (!this.backlog) return void this.output.push(frame.framed(sseEvent));
    this.backlog.push(frame);
    if (this.early >= 0) this.lateBytes += frame.byteLength;
  }

  get bufferedBytes(): number {
    return this.output.length + this.res.writableLength + this.lateBytes;
  }

  end(): void {
    this.output.flush();
    this.res.end();
  }

  destroy(): void {
    this.output.clear();
    this.res.destroy();
  }

  // An event stream has no input to hold back.
  pause(): void {}
  resume(): void {}

  whenDrained(callback: () => void): void {
    this.output.flush();
    if (this.res.writableNeedDrain) this.res.once('drain', callback);
    else queueMicrotask(callback);
  }
}

/** A frame as an event, named after its command, with its id when it has one; made once however many streams send it (`Frame.framed`). */
const sseEvent: Framing = (frame) => {
  const event = COMMAND.exec(frame.json)?.[1] ?? 'publish';
  const id = frame.id === undefined ? '' : `id: ${frame.id}\n`;
  return Buffer.from(`event: ${event}\n${id}data: ${frame.json}\n\n`);
};
