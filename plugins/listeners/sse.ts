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
 * - Each delivery is `event: publish` with the message's JSON as `data`;
 *   a `: heartbeat` comment every `heartbeatMs` keeps proxies from closing
 *   an idle stream. Nothing is stored, so `Last-Event-ID` is not honoured.
 * - A stream opened with a token that expires ends then, after an
 *   `event: auth` whose data is `{"command":"auth","error":"token expired; closing"}`.
 * - A slow reader is under the same drop/disconnect policy as any
 *   connection, measured by the response's buffered bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectionInfo, Frame, Framing, ListenerContext, OutputQueue, Session, Sink } from '../../host/index.ts';
import { authenticate, sendError, statusOf } from './web.ts';

export const EVENTS_PATH = '/subscribe/events';

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

export interface EventStreamOptions {
  context: ListenerContext;
  heartbeatMs: number;
  /** The client, as the stream's session reports it. */
  peer: ConnectionInfo;
  /** The CORS headers of every answer. */
  cors: Record<string, string>;
  /** Given the session of a stream that started (the listener ends it if a drain began meanwhile). */
  opened: (session: Session) => void;
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
  for (const tags of subscriptions) {
    const result = await context.run(session, { command: 'subscribe', tags });
    if (!session.isOpen || res.destroyed) return;
    if (!result.ok) {
      session.closed();
      return sendError(res, statusOf(result.kind), result.error, cors);
    }
  }
  sink.start();
  opened(session);
  // A stream whose subscriptions were all revoked (unset, unregister) can never receive again: end it.
  const heartbeat = setInterval(() => (session.subscriptions.size === 0 ? session.end() : sink.heartbeat()), heartbeatMs);
  res.on('close', () => clearInterval(heartbeat));
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

/** `bytes` as one chunk of HTTP's chunked encoding (its size in hex, CRLF, the bytes, CRLF), in one buffer. */
export function chunk(bytes: Buffer): Buffer {
  const head = `${bytes.length.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(head.length + bytes.length + 2);
  const at = framed.write(head, 'latin1') + bytes.copy(framed, head.length);
  framed[at] = 0x0d;
  framed[at + 1] = 0x0a;
  return framed;
}

/** A frame's JSON starts with its command (deliveries and replies are built command first); the event is named after it. */
const COMMAND = /^\{"command":"(\w+)"/;

/** A frame as an SSE event, made once however many streams send it (`Frame.framed`). */
const sseEvent: Framing = (frame) => Buffer.from(`event: ${COMMAND.exec(frame.json)?.[1] ?? 'publish'}\ndata: ${frame.json}\n\n`);

/**
 * A session's deliveries as an event stream, coalesced like TCP lines (one
 * write per flush). Until {@link start}, while the subscriptions are being
 * made, it holds back what is delivered, in order.
 */
class EventStreamSink implements Sink {
  /** Deliveries that came before the stream started. */
  private held: Frame[] | undefined = [];

  constructor(
    private readonly res: ServerResponse,
    private readonly cors: Record<string, string>,
    private readonly output: OutputQueue,
  ) {}

  /** Sends the headers and what was held back; from now on deliveries stream. */
  start(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tell nginx and the like not to buffer the stream.
      'x-accel-buffering': 'no',
      ...this.cors,
    });
    this.res.write(': subscribed\n\n');
    const held = this.held!;
    this.held = undefined;
    for (const frame of held) this.write(frame);
  }

  heartbeat(): void {
    this.output.push(HEARTBEAT);
  }

  write(frame: Frame): void {
    if (this.held) return void this.held.push(frame);
    this.output.push(frame.framed(sseEvent));
  }

  get bufferedBytes(): number {
    return this.output.length + this.res.writableLength;
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
