/** One JSON message per WebSocket text frame, at `/subscribe/websocket`. */
import WebSocket from 'ws';
import { ClientErrorCodes, MistClientError } from './errors.ts';
import { connectionError, displayUrl, webSocketUrl, type Transport, type TransportHandlers, type TransportOptions } from './transport.ts';

const CLOSE_GRACE_MS = 1000;

export function openWebSocket(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const target = webSocketUrl(url);
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target, {
      headers: options.token === undefined ? {} : { 'X-AUTH-TOKEN': options.token },
      handshakeTimeout: options.connectTimeoutMs,
      maxPayload: options.maxMessageBytes,
      ...options.tls,
    });
    const failed = (err: Error) => {
      socket.terminate();
      // ws reports a refused upgrade as "Unexpected server response: 401".
      const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
      if (status === '401') {
        reject(new MistClientError(ClientErrorCodes.UNAUTHORIZED, `${displayUrl(target)} refused the token (HTTP 401)`, { cause: err }));
      } else if (status) {
        reject(new MistClientError(ClientErrorCodes.CONNECTION, `cannot connect to ${displayUrl(target)}: HTTP ${status}`, { cause: err }));
      } else {
        reject(connectionError(target, err));
      }
    };
    socket.once('error', failed);
    socket.once('open', () => {
      socket.off('error', failed);
      resolve(new WebSocketTransport(socket, options.token !== undefined, handlers));
    });
  });
}

class WebSocketTransport implements Transport {
  private lastError: Error | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly socket: WebSocket,
    readonly sentToken: boolean,
    handlers: TransportHandlers,
  ) {
    socket.on('message', (data, isBinary) => {
      if (!isBinary) handlers.message(data.toString());
    });
    socket.on('error', (err) => (this.lastError = err));
    this.done = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        const clean = code === 1000 || code === 1001;
        handlers.closed(this.lastError ?? (clean ? undefined : new Error(`closed with code ${code}${reason.length ? `: ${reason.toString()}` : ''}`)));
        resolve();
      });
    });
  }

  send(json: string): void {
    this.socket.send(json);
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.close(1000);
      // Not unref'd: close() must settle even when nothing else keeps the process alive.
      const timer = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
      void this.done.then(() => clearTimeout(timer));
    } else if (this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.terminate();
    }
    return this.done;
  }
}
