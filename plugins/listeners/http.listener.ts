/**
 * `http://host:port` and `https://host:port` — every HTTP route on one port:
 *
 * | route | answer |
 * |---|---|
 * | `GET /ping` | `pong` |
 * | `POST /publish` | a JSON message (`command` may be left out); 204, or 400/401/403/413/429/503 with `{"error":…}` |
 * | `GET /subscribe/websocket` | the WebSocket endpoint (websocket.ts) |
 * | `GET /subscribe/events?tags=a,b` | Server-Sent Events (sse.ts) |
 * | `GET /metrics` | Prometheus text (host/metrics.ts) |
 * | `GET /healthz` | `{"status":"ok"}` while the server runs |
 * | `GET /mist-client.js` | the client library's browser build, and its source map at `/mist-client.js.map` (browser-client.ts) |
 *
 * Unknown paths get 404, a wrong method 405 (with `Allow`), all as JSON
 * `{"error":…}`. `/publish`, its preflight, the event stream and the
 * WebSocket refuse a web page the server does not allow (`allowedOrigins`)
 * with 403, and name only allowed pages in their CORS headers. URI query: `?ping=MS` (WebSocket pings, default 30 000),
 * `?heartbeat=MS` (SSE heartbeats, default 15 000), and for https
 * `?cert=PATH&key=PATH` (else the config's `tls`, else self-signed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ConnectionInfo, definePlugin, parseMessage, type ListenerContext, type MetricsService, type ListenerConnection, WEBSOCKET_PATH } from '../../host/index.ts';
import { BROWSER_CLIENT_MAP_PATH, BROWSER_CLIENT_PATH, serveBrowserClient } from './browser-client.ts';
import { EVENTS_PATH, serveEvents } from './sse.ts';
import type { TlsPaths } from './tls-credentials.ts';
import {
  authenticate,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PING_INTERVAL_MS,
  intervalParam,
  peerOf,
  refuseUpgrade,
  requestUrl,
  sendError,
  sendJson,
  statusOf,
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
  [BROWSER_CLIENT_PATH, ['GET', 'HEAD']],
  [BROWSER_CLIENT_MAP_PATH, ['GET', 'HEAD']],
]);

/** `/ping` and `/metrics` stay readable from any page, as they were before origins were checked (docs/http.md). */

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
      this.context.logger.error({ err, ...where }, 'http request failed');
      sendError(res, 500, 'internal error');
    });
  }

  protected upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req);
    if (!url || url.pathname !== WEBSOCKET_PATH) return refuseUpgrade(socket, 404, `not found: the WebSocket endpoint is GET ${WEBSOCKET_PATH}`);
    this.endpoint!.upgrade(req, socket, head, url);
  }

  /** Resolves once the requests being answered (a publish) are, and every stream and WebSocket has ended. */
  protected async drainConnections(): Promise<void> {
    const responses = [...this.responses].map((res) => new Promise((resolve) => res.once('close', resolve)));
    await Promise.all([this.endpoint?.drain(), ...responses]);
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
    const readable = this.context.origins.readCors(req.headers.origin);
    switch (url.pathname) {
      case '/ping':
        return text(res, 200, 'pong', readable);
      case '/healthz':
        return sendJson(res, 200, { status: 'ok' });
      case '/metrics':
        return text(res, 200, await this.metrics.render(), readable, this.metrics.contentType);
      case BROWSER_CLIENT_PATH:
      case BROWSER_CLIENT_MAP_PATH:
        return serveBrowserClient(req, res, url.pathname);
      case '/publish':
      case EVENTS_PATH:
        return this.fromPages(req, res, url, method);
      case WEBSOCKET_PATH:
        return sendError(res, 426, 'this endpoint speaks WebSocket only', { upgrade: 'websocket', connection: 'Upgrade' });
    }
  }

  /** A stream whose request came before the drain began, but started after the server ended the others: it ends too. */
  private streamStarted(session: ListenerConnection): void {
    if (this.isDraining) session.end();
  }

  /**
   * The routes a web page may use: refused with 403, before anything else,
   * from a page whose origin the server does not allow; answered with CORS
   * headers naming the page otherwise.
   */
  private fromPages(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> | void {
    const peer = peerOf(req, url.pathname === EVENTS_PATH ? 'sse' : 'http');
    const origin = req.headers.origin;
    const refusal = this.context.origins.refusal(origin, peer, url.pathname);
    // The body of a refused POST is not read: close rather than read it to keep the connection.
    if (refusal !== undefined) return sendError(res, 403, refusal, { connection: 'close' });
    const cors = this.context.origins.cors(origin);
    if (url.pathname === EVENTS_PATH) {
      const opened = (session: ListenerConnection): void => this.streamStarted(session);
      return serveEvents(req, res, url, { context: this.context, heartbeatMs: this.heartbeatMs, peer, cors, opened });
    }
    if (method === 'OPTIONS') return preflight(res, cors);
    return this.publish(req, res, url, peer, cors);
  }

  /**
   * `POST /publish`: the body is checked and run as one publish request, by
   * a connection of its own, so validation and permissions are those of a
   * TCP line; a refusal's kind gives the status.
   */
  private async publish(req: IncomingMessage, res: ServerResponse, url: URL, peer: ConnectionInfo, cors: Record<string, string>): Promise<void> {
    const limit = this.context.limits.maxMessageBytes;
    const fail = (status: number, message: string): void => sendError(res, status, message, { ...cors, connection: 'close' });
    const tooLong = `message too long: over ${limit} bytes`;
    if (Number(req.headers['content-length']) > limit) return fail(413, tooLong);
    const auth = await authenticate(req, url, this.context, peer);
    if (auth.refused !== undefined) return fail(auth.status, auth.refused);
    const body = await readBody(req, limit);
    if (body === undefined) return fail(413, tooLong);
    const message = parseMessage(body);
    if ('error' in message) return fail(400, message.error);
    // This route publishes: `command` may be left out, but may not name another.
    const { command = 'publish', tags, data } = message.fields;
    if (command !== 'publish') return fail(400, `POST /publish takes publish messages only, not "${String(command)}"`);

    const request = { command, tags, data, text: message.text };
    const result = await this.context.runOnce(peer, request, auth.identity);
    if (!result.ok) return fail(statusOf(result.kind), result.error);
    res.writeHead(204, cors);
    res.end();
  }
}

function text(res: ServerResponse, status: number, body: string, cors: Record<string, string>, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...cors });
  res.end(body);
}

/** Answers a browser's CORS preflight for `POST /publish` with a token header. */
function preflight(res: ServerResponse, cors: Record<string, string>): void {
  res.writeHead(204, {
    ...cors,
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
