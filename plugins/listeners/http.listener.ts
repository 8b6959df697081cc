/**
 * `http://host:port` and `https://host:port` — every HTTP route on one port:
 *
 * | route | answer |
 * |---|---|
 * | `GET /ping` | `pong` |
 * | `POST /publish` | a JSON message (`command` may be left out); 204, or 400/401/403/413 with `{"error":…}` |
 * | `GET /subscribe/websocket` | the WebSocket endpoint (websocket.ts) |
 * | `GET /subscribe/events?tags=a,b` | Server-Sent Events (sse.ts) |
 * | `GET /metrics` | Prometheus text (host/metrics.ts) |
 * | `GET /healthz` | `{"status":"ok"}` while the server runs |
 *
 * Unknown paths get 404, a wrong method 405 (with `Allow`), all as JSON
 * `{"error":…}`. URI query: `?ping=MS` (WebSocket pings, default 30 000),
 * `?heartbeat=MS` (SSE heartbeats, default 15 000), and for https
 * `?cert=PATH&key=PATH` (else the config's `tls`, else self-signed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { CommandError, definePlugin, type Frame, type ListenerContext, type Message, type MetricsService, type Sink, WEBSOCKET_PATH } from '../../host/index.ts';
import { EVENTS_PATH, serveEvents } from './sse.ts';
import type { TlsPaths } from './tls-credentials.ts';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PING_INTERVAL_MS,
  identityOf,
  intervalParam,
  refuseUpgrade,
  remoteOf,
  requestUrl,
  sendError,
  sendJson,
  TOKEN_HEADER,
  WebListener,
} from './web.ts';
import { WebSocketEndpoint } from './websocket.ts';

export default definePlugin({
  name: 'http',
  register(api) {
    const { tls } = api.config;
    api.listeners.register('http', (url, context) => new HttpListener(url, context, false, tls, api.metrics));
    api.listeners.register('https', (url, context) => new HttpListener(url, context, true, tls, api.metrics));
  },
});

/** Methods each route answers; HEAD goes with GET. */
const ROUTES = new Map<string, readonly string[]>([
  ['/ping', ['GET', 'HEAD']],
  ['/publish', ['POST', 'OPTIONS']],
  [WEBSOCKET_PATH, ['GET']],
  [EVENTS_PATH, ['GET']],
  ['/metrics', ['GET', 'HEAD']],
  ['/healthz', ['GET', 'HEAD']],
]);

/** Lets pages on other origins publish and subscribe: tokens travel in a header, never in cookies. */
const CORS = { 'access-control-allow-origin': '*' };

const PING = JSON.stringify({ command: 'ping' });

export class HttpListener extends WebListener {
  private endpoint: WebSocketEndpoint | undefined;
  /** Requests being answered (SSE streams above all), closed with the listener. */
  private readonly responses = new Set<ServerResponse>();
  private heartbeatMs = DEFAULT_HEARTBEAT_MS;

  constructor(
    address: URL,
    context: ListenerContext,
    secure: boolean,
    tls: TlsPaths | undefined,
    private readonly metrics: MetricsService,
  ) {
    super(address, context, secure, tls);
  }

  override async listen(): Promise<void> {
    this.heartbeatMs = intervalParam(this.address, 'heartbeat', DEFAULT_HEARTBEAT_MS);
    this.endpoint = new WebSocketEndpoint(this.context, {
      transport: this.secure ? 'wss' : 'ws',
      pingIntervalMs: intervalParam(this.address, 'ping', DEFAULT_PING_INTERVAL_MS),
    });
    await super.listen();
  }

  protected request(req: IncomingMessage, res: ServerResponse): void {
    this.responses.add(res);
    res.on('close', () => this.responses.delete(res));
    this.route(req, res).catch((err: unknown) => {
      // The path only: the query may hold a token, and tokens are never logged.
      const where = { method: req.method, path: requestUrl(req)?.pathname };
      // The client went away mid-request (a body cut short): nobody is left to answer.
      if (req.destroyed && !req.complete) return this.context.logger.debug(where, 'http request aborted by the client');
      // The token store is down: the client may try again later.
      if (err instanceof CommandError) return sendError(res, 503, err.message);
      this.context.logger.error({ err, ...where }, 'http request failed');
      sendError(res, 500, 'internal error');
    });
  }

  protected upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req);
    if (!url || url.pathname !== WEBSOCKET_PATH) return refuseUpgrade(socket, 404, 'Not Found', `not found: the WebSocket endpoint is GET ${WEBSOCKET_PATH}`);
    this.endpoint!.upgrade(req, socket, head, url);
  }

  protected async closeConnections(): Promise<void> {
    // Resolve only once every stream's session has seen its response close.
    const responses = [...this.responses].map((res) => new Promise((resolve) => res.once('close', resolve)));
    for (const res of this.responses) res.destroy();
    await Promise.all([this.endpoint?.close(), ...responses]);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req);
    if (!url) return sendError(res, 400, 'malformed request URL');
    const methods = ROUTES.get(url.pathname);
    if (!methods) return sendError(res, 404, `not found: ${url.pathname}`);
    const method = req.method ?? 'GET';
    if (!methods.includes(method)) {
      return sendError(res, 405, `${method} is not allowed on ${url.pathname} (allowed: ${methods.join(', ')})`, { allow: methods.join(', ') });
    }
    switch (url.pathname) {
      case '/ping':
        return text(res, 200, 'pong');
      case '/healthz':
        return sendJson(res, 200, { status: 'ok' });
      case '/metrics':
        return text(res, 200, await this.metrics.render(), this.metrics.contentType);
      case '/publish':
        if (method === 'OPTIONS') return preflight(res);
        return this.publish(req, res, url);
      case EVENTS_PATH:
        return serveEvents(req, res, url, this.context, this.heartbeatMs);
      case WEBSOCKET_PATH:
        return sendError(res, 426, 'this endpoint speaks WebSocket only', { upgrade: 'websocket', connection: 'Upgrade' });
    }
  }

  /**
   * `POST /publish`: the body is run as one frame by a short-lived session,
   * exactly as a TCP line would be, so validation and permissions are the
   * same; its error reply, if any, becomes the HTTP answer.
   */
  private async publish(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const limit = this.context.limits.maxMessageBytes;
    const fail = (status: number, message: string): void => sendError(res, status, message, { ...CORS, connection: 'close' });
    if (Number(req.headers['content-length']) > limit) return fail(413, `message too long: over ${limit} bytes`);
    const auth = await identityOf(req, url, this.context);
    if (auth.refused !== undefined) return fail(401, auth.refused);
    if (auth.identity === undefined && this.context.auth.required) {
      return fail(401, 'not authenticated: give the token in the X-AUTH-TOKEN header or the x-auth-token parameter');
    }
    const body = await readBody(req, limit);
    if (body === undefined) return fail(413, `message too long: over ${limit} bytes`);
    const parsed = publishFrame(body);
    if ('error' in parsed) return fail(400, parsed.error);

    const sink = new ReplySink();
    const session = this.context.open(sink, { transport: 'http', remote: remoteOf(req) }, auth.identity);
    session.receive(parsed.frame);
    // Replies come in order: once the ping's is in, the publish has been handled.
    session.receive(PING);
    const replies = await sink.replies;
    session.closed();
    const failed = replies.find((reply) => reply.error !== undefined);
    if (!failed) {
      res.writeHead(204, CORS);
      return void res.end();
    }
    // The error reply names no tags: the refusal is a permission one if the body's tags are not permitted.
    const { tags } = parsed;
    const forbidden = Array.isArray(tags) && tags.every((tag) => typeof tag === 'string') && this.context.auth.refuseTags(session.identity, tags) !== undefined;
    fail(forbidden ? 403 : 400, failed.error!);
  }
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...CORS });
  res.end(body);
}

/** Answers a browser's CORS preflight for `POST /publish` with a token header. */
function preflight(res: ServerResponse): void {
  res.writeHead(204, {
    ...CORS,
    'access-control-allow-methods': 'POST',
    'access-control-allow-headers': `content-type, ${TOKEN_HEADER}`,
    'access-control-max-age': '600',
  });
  res.end();
}

/** The request body, or undefined once it passes `limit` bytes (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        return resolve(undefined);
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * The frame to run for a publish body: the body itself, with
 * `"command":"publish"` put in when it has no `command`. Any other command
 * is refused here: this route publishes. `{ error }` for a body that is no
 * JSON object.
 */
export function publishFrame(body: Buffer): { frame: string; tags: unknown } | { error: string } {
  if (!isUtf8(body)) return { error: 'invalid UTF-8' };
  const text = body.toString();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `invalid JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a message must be a JSON object' };
  const { command, tags } = value as { command?: unknown; tags?: unknown };
  if (command === undefined) {
    // Splice the command in rather than re-encode, so `data` goes out exactly as written.
    const rest = text.trimStart().slice(1);
    return { frame: rest.trimStart().startsWith('}') ? '{"command":"publish"}' : `{"command":"publish",${rest}`, tags };
  }
  if (command !== 'publish') return { error: `POST /publish takes publish messages only, not "${String(command)}"` };
  return { frame: text, tags };
}

/** Collects a short-lived session's replies until the closing ping's. */
class ReplySink implements Sink {
  readonly replies: Promise<Message[]>;
  private resolveReplies!: (replies: Message[]) => void;
  private readonly collected: Message[] = [];

  constructor() {
    this.replies = new Promise((resolve) => (this.resolveReplies = resolve));
  }

  write(frame: Frame): void {
    const reply = JSON.parse(frame.json) as Message;
    if (reply.command === 'ping' && reply.error === undefined) this.resolveReplies(this.collected);
    else this.collected.push(reply);
  }

  readonly bufferedBytes = 0;
  end(): void {
    this.resolveReplies(this.collected);
  }
  destroy(): void {
    this.resolveReplies(this.collected);
  }
  pause(): void {}
  resume(): void {}
  whenDrained(callback: () => void): void {
    queueMicrotask(callback);
  }
}
