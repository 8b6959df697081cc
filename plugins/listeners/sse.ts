/**
 * Server-Sent Events at `GET /subscribe/events?tags=a,b`. Not a plugin.
 *
 * - Each `tags` parameter is one subscription (comma-separated tags):
 *   `?tags=a,b&tags=c` holds {a,b} and {c}, as two `subscribe` commands
 *   would. Without any, 400.
 * - The subscriptions go through the dispatcher, so limits and permissions
 *   are those of every transport: a refusal is answered before the stream
 *   starts (401 no/wrong token, 403 tags not permitted, 400 bad tags).
 * - Each delivery is `event: publish` with the message's JSON as `data`;
 *   a `: heartbeat` comment every `heartbeatMs` keeps proxies from closing
 *   an idle stream. Nothing is stored, so `Last-Event-ID` is not honoured.
 * - A slow reader is under the same drop/disconnect policy as any
 *   connection, measured by the response's buffered bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Frame, ListenerContext, Message, Sink } from '../../host/index.ts';
import { identityOf, remoteOf, sendError } from './web.ts';

export const EVENTS_PATH = '/subscribe/events';

const HEARTBEAT = Buffer.from(': heartbeat\n\n');
const PING = JSON.stringify({ command: 'ping' });

/** Serves one SSE request until the client goes away or the server closes. */
export async function serveEvents(req: IncomingMessage, res: ServerResponse, url: URL, context: ListenerContext, heartbeatMs: number): Promise<void> {
  const subscriptions = url.searchParams.getAll('tags').map((value) => value.split(',').map((tag) => tag.trim()));
  if (subscriptions.length === 0 || subscriptions.some((tags) => tags.some((tag) => tag === ''))) {
    return sendError(res, 400, 'give the tags to subscribe to: /subscribe/events?tags=a,b (repeat tags= for more subscriptions)');
  }
  const auth = await identityOf(req, url, context);
  if (auth.refused !== undefined) return sendError(res, 401, auth.refused);
  if (auth.identity === undefined && context.auth.required) {
    return sendError(res, 401, `not authenticated: give the token in the X-AUTH-TOKEN header or the x-auth-token parameter`);
  }
  if (req.destroyed) return;

  const sink = new EventStreamSink(res);
  const session = context.open(sink, { transport: 'sse', remote: remoteOf(req) }, auth.identity);
  res.on('close', () => {
    sink.abandon();
    session.closed();
  });
  for (const tags of subscriptions) session.receive(JSON.stringify({ command: 'subscribe', tags }));
  // Replies come in order: once the ping's is in, every subscribe has been answered.
  session.receive(PING);
  const replies = await sink.replies;
  if (!session.isOpen || res.destroyed) return;
  // One reply per subscribe, in order; an error reply names no tags, so its subscription is found by place.
  const failed = replies.findIndex((reply) => reply.error !== undefined);
  if (failed >= 0) {
    const forbidden = context.auth.refuseTags(session.identity, subscriptions[failed]!) !== undefined;
    session.closed();
    return sendError(res, forbidden ? 403 : 400, replies[failed]!.error!);
  }
  sink.start();
  // A stream whose subscriptions were all revoked (unset, unregister) can never receive again: end it.
  const heartbeat = setInterval(() => (session.subscriptions.size === 0 ? session.end() : sink.heartbeat()), heartbeatMs);
  res.on('close', () => clearInterval(heartbeat));
}

/** The SSE encoding of each frame, made once however many streams send it. */
const eventBytes = new WeakMap<Frame, Buffer>();

/**
 * A session's output as an event stream. Until {@link start}, it collects
 * the replies to the subscribe commands (and holds back any delivery).
 */
class EventStreamSink implements Sink {
  readonly replies: Promise<Message[]>;
  private resolveReplies!: (replies: Message[]) => void;
  private readonly collected: Message[] = [];
  /** Deliveries that came before the stream started. */
  private held: Frame[] | undefined = [];

  constructor(private readonly res: ServerResponse) {
    this.replies = new Promise((resolve) => (this.resolveReplies = resolve));
  }

  /** Sends the headers and what was held back; from now on deliveries stream. */
  start(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tell nginx and the like not to buffer the stream.
      'x-accel-buffering': 'no',
      'access-control-allow-origin': '*',
    });
    this.res.write(': subscribed\n\n');
    const held = this.held!;
    this.held = undefined;
    for (const frame of held) this.write(frame);
  }

  /** The client went away: stop waiting for replies. */
  abandon(): void {
    if (this.held) this.resolveReplies(this.collected);
  }

  heartbeat(): void {
    this.res.write(HEARTBEAT);
  }

  write(frame: Frame): void {
    if (this.held) {
      // Before the stream starts only replies come, but for deliveries (which Frame.publish makes).
      if (frame.json.startsWith('{"command":"publish","tags":')) return void this.held.push(frame);
      const reply = JSON.parse(frame.json) as Message;
      if (reply.command === 'ping' && reply.error === undefined) this.resolveReplies(this.collected);
      else this.collected.push(reply);
      return;
    }
    let bytes = eventBytes.get(frame);
    if (!bytes) eventBytes.set(frame, (bytes = Buffer.from(`event: publish\ndata: ${frame.json}\n\n`)));
    this.res.write(bytes);
  }

  get bufferedBytes(): number {
    return this.res.writableLength;
  }

  end(): void {
    if (this.held) this.resolveReplies(this.collected);
    this.res.end();
  }

  destroy(): void {
    if (this.held) this.resolveReplies(this.collected);
    this.res.destroy();
  }

  // An event stream has no input to hold back.
  pause(): void {}
  resume(): void {}

  whenDrained(callback: () => void): void {
    if (this.res.writableNeedDrain) this.res.once('drain', callback);
    else queueMicrotask(callback);
  }
}
