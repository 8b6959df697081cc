/**
 * What the WebSocket and HTTP listeners share: an HTTP(S) server bound from
 * a listener URI, token lookup, small response helpers. Not a plugin.
 */
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { CommandError, type ConnectionInfo, type Identity, type Listener, type ListenerContext, type RefusalKind } from '../../host/index.ts';
import { bind } from './bind.ts';
import { tlsCredentials, type TlsPaths } from './tls-credentials.ts';

/** The header and query parameter that carry a token; Node lower-cases header names. */
export const TOKEN_HEADER = 'x-auth-token';
export const TOKEN_PARAM = 'x-auth-token';

/** The HTTP status that answers each kind of refusal. */
const STATUS: Record<RefusalKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  unknown: 400,
  limit: 413,
  throttled: 429,
  unavailable: 503,
  failed: 500,
};

export function statusOf(kind: RefusalKind): number {
  return STATUS[kind];
}

/** Default WebSocket ping interval: `?ping=MS` on the listener URI overrides it. */
export const DEFAULT_PING_INTERVAL_MS = 30_000;
/** Default SSE heartbeat interval: `?heartbeat=MS` on the listener URI overrides it. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** A positive integer from the listener URI's query, or `fallback` when absent. */
export function intervalParam(url: URL, name: string, fallback: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`?${name}= must be a positive integer of milliseconds, not "${raw}"`);
  return value;
}

/** The request's URL; `undefined` when it cannot be parsed. */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://mist.invalid');
  } catch {
    return undefined;
  }
}

/** The token a request carries in its `X-AUTH-TOKEN` header or `x-auth-token` query parameter. */
export function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers[TOKEN_HEADER];
  const value = Array.isArray(header) ? header[0] : header;
  return value || url.searchParams.get(TOKEN_PARAM) || undefined;
}

/** What a request's token came to: the identity it grants (undefined without a token), or a refusal and its HTTP status. */
export type TokenCheck = { identity: Identity | undefined; refused?: undefined } | { refused: string; status: number };

/**
 * What the token a request carries grants, checked as the token of a client
 * at `peer` (see `context.auth.identify`); without a token the connection
 * starts as every new connection does.
 */
export async function identityOf(req: IncomingMessage, url: URL, context: ListenerContext, peer: ConnectionInfo): Promise<TokenCheck> {
  const token = tokenOf(req, url);
  if (token === undefined) return { identity: undefined };
  try {
    const identity = await context.auth.identify(token, peer);
    return identity ? { identity } : { refused: 'invalid token', status: 401 };
  } catch (err) {
    // Too many checks from this address at once (429), or the token store is down (503).
    if (err instanceof CommandError) return { refused: err.message, status: statusOf(err.kind) };
    throw err;
  }
}

/** The 401 of a request that carries no token where one is required. */
const TOKEN_REQUIRED = 'not authenticated: give the token in the X-AUTH-TOKEN header or the x-auth-token parameter';

/**
 * What a request that cannot send `auth` later (a publish, an event stream)
 * is granted: as {@link identityOf}, and refused when it has no token but
 * the server requires one.
 */
export async function authenticate(req: IncomingMessage, url: URL, context: ListenerContext, peer: ConnectionInfo): Promise<TokenCheck> {
  const auth = await identityOf(req, url, context, peer);
  if (auth.refused === undefined && auth.identity === undefined && context.auth.required) {
    return { refused: TOKEN_REQUIRED, status: 401 };
  }
  return auth;
}

/** Answers with `{"error":message}`. */
export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Refuses an upgrade request on its raw socket, before any WebSocket exists, with `{"error":message}`. */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** The peer of a request, as a connection of `transport` reports it. */
export function peerOf(req: IncomingMessage, transport: string): ConnectionInfo {
  const { remoteAddress, remotePort } = req.socket;
  return { transport, remote: `${remoteAddress}:${remotePort}`, address: remoteAddress };
}

/**
 * A listener over an HTTP or HTTPS server. Subclasses route requests and
 * upgrades; this binds, reports the real port, and closes.
 */
export abstract class WebListener implements Listener {
  url: string;
  protected server: Server | undefined;
  private stopped: Promise<void> | undefined;
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    protected readonly address: URL,
    protected readonly context: ListenerContext,
    /** TLS (wss, https) or not. */
    protected readonly secure: boolean,
    private readonly tlsConfig: TlsPaths | undefined,
  ) {
    this.url = address.href;
  }

  protected abstract request(req: IncomingMessage, res: ServerResponse): void;
  protected abstract upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Lets what the subclass holds (WebSockets, streams, requests being answered) finish; resolves once all have. */
  protected abstract drainConnections(): Promise<void>;
  /** Closes what the subclass holds (WebSockets, streams) before the server closes. */
  protected abstract closeConnections(): Promise<void>;

  /** The server is shutting down: connections it holds are draining. */
  protected get isDraining(): boolean {
    return this.draining !== undefined;
  }

  async listen(): Promise<void> {
    const server = this.secure
      ? createHttpsServer(await tlsCredentials(this.address, this.tlsConfig, this.context.logger))
      : createHttpServer();
    this.server = server;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // A request on a keep-alive connection after the drain began.
      if (this.isDraining) return sendError(res, 503, 'the server is shutting down', { connection: 'close' });
      this.request(req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    // A client's malformed request must not crash anything: answer 400 and drop it.
    server.on('clientError', (_err, socket: Duplex) => refuseUpgrade(socket, 400, 'malformed HTTP request'));
    // An omitted port is the scheme's standard one.
    const port = await bind(server, this.address, this.secure ? 443 : 80, (err) =>
      this.context.logger.error({ err, url: this.url }, 'listener error'),
    );
    this.url = `${this.address.protocol}//${this.address.hostname}:${port}`;
  }

  drain(): Promise<void> {
    this.draining ??= (async () => {
      if (!this.server) return;
      this.stopAccepting();
      await this.drainConnections();
    })();
    return this.draining;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const server = this.server;
      if (!server) return;
      const stopped = this.stopAccepting();
      await this.closeConnections();
      // Idle keep-alive connections and streams still being answered (SSE) go now.
      server.closeAllConnections();
      await stopped;
    })();
    return this.closing;
  }

  /** Closes the server to new connections (and its idle keep-alive ones); resolves once every connection is closed. */
  private stopAccepting(): Promise<void> {
    this.stopped ??= new Promise((resolve) => this.server!.close(() => resolve()));
    return this.stopped;
  }
}
