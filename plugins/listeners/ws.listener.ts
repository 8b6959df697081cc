/**
 * `ws://host:port` and `wss://host:port` — the WebSocket protocol at
 * `GET /subscribe/websocket`; see websocket.ts for framing, auth,
 * limits and liveness. Other paths get 404, a plain GET of the endpoint 426.
 *
 * URI query: `?ping=MS` sets the ping interval (default 30 000); for wss,
 * `?cert=PATH&key=PATH` (else the config's `tls`, else self-signed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { definePlugin, type ListenerContext } from '../../host/index.ts';
import type { TlsPaths } from './tls-credentials.ts';
import { DEFAULT_PING_INTERVAL_MS, intervalParam, refuseUpgrade, requestUrl, sendError, WebListener } from './web.ts';
import { WebSocketEndpoint } from './websocket.ts';

export default definePlugin({
  name: 'ws',
  register(api) {
    const { tls } = api.config;
    api.listeners.register('ws', (url, context) => new WsListener(url, context, false, tls));
    api.listeners.register('wss', (url, context) => new WsListener(url, context, true, tls));
  },
});

export class WsListener extends WebListener {
  private endpoint: WebSocketEndpoint | undefined;

  constructor(address: URL, context: ListenerContext, secure: boolean, tls: TlsPaths | undefined) {
    super(address, context, secure, tls);
  }

  override async listen(): Promise<void> {
    this.endpoint = new WebSocketEndpoint(this.context, {
      transport: this.secure ? 'wss' : 'ws',
      pingIntervalMs: intervalParam(this.address, 'ping', DEFAULT_PING_INTERVAL_MS),
    });
    await super.listen();
  }

  protected request(req: IncomingMessage, res: ServerResponse): void {
    const url = requestUrl(req);
    if (url && this.endpoint?.serves(url.pathname)) {
      sendError(res, 426, 'this endpoint speaks WebSocket only', { upgrade: 'websocket', connection: 'Upgrade' });
    } else {
      sendError(res, 404, 'not found: the WebSocket endpoint is GET /subscribe/websocket');
    }
  }

  protected upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req);
    if (!url || !this.endpoint?.serves(url.pathname)) return refuseUpgrade(socket, 404, 'not found: the WebSocket endpoint is GET /subscribe/websocket');
    this.endpoint!.upgrade(req, socket, head, url);
  }

  protected async drainConnections(): Promise<void> {
    await this.endpoint?.drain();
  }

  protected async closeConnections(): Promise<void> {
    await this.endpoint?.close();
  }
}
