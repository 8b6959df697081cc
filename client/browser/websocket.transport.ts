/**
 * One JSON message per text frame over the browser's own `WebSocket`, at
 * `/subscribe/websocket`. A page cannot set headers on a WebSocket, so the
 * client sends its token with `auth` once connected, as over TCP; the
 * browser answers the server's pings and TLS is the page's.
 */
import { ClientErrorCodes, MistClientError } from '../errors.ts';
import { displayUrl, webSocketUrl, type Transport, type TransportHandlers, type TransportOptions } from '../transport.ts';

/** How long a graceful close may wait for the server's close frame. */
const CLOSE_GRACE_MS = 1000;
/** The close code for a message over the size limit (RFC 6455). */
const MESSAGE_TOO_BIG = 1009;

export function openBrowserWebSocket(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const target = webSocketUrl(url);
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target.href);
    const fail = (reason: string) => {
      clearTimeout(timer);
      socket.close();
      reject(new MistClientError(ClientErrorCodes.CONNECTION, `cannot connect to ${displayUrl(target)}: ${reason}`));
    };
    const timer = setTimeout(() => fail(`no connection within ${options.connectTimeoutMs} ms`), options.connectTimeoutMs);
    // A browser does not tell a page why: a refused connection, an HTTP error and a bad certificate look alike.
    const failed = () => fail('the WebSocket failed (refused, or not upgraded: the browser console says why)');
    socket.addEventListener('error', failed, { once: true });
    socket.addEventListener(
      'open',
      () => {
        clearTimeout(timer);
        socket.removeEventListener('error', failed);
        resolve(new BrowserWebSocketTransport(socket, options.maxMessageBytes, handlers));
      },
      { once: true },
    );
  });
}

class BrowserWebSocketTransport implements Transport {
  readonly sentToken = false;
  private readonly done: Promise<void>;
  private tooBig: Error | undefined;

  constructor(
    private readonly socket: WebSocket,
    maxMessageBytes: number,
    handlers: TransportHandlers,
  ) {
    const encoder = new TextEncoder();
    socket.addEventListener('message', ({ data }) => {
      if (typeof data !== 'string' || this.tooBig) return;
      // A UTF-8 byte count is needed only where the characters alone could pass the limit.
      if (data.length * 3 > maxMessageBytes && encoder.encode(data).length > maxMessageBytes) {
        this.tooBig = new MistClientError(ClientErrorCodes.CONNECTION, `the server sent a message over ${maxMessageBytes} bytes`);
        return socket.close(MESSAGE_TOO_BIG);
      }
      handlers.message(data);
    });
    this.done = new Promise((resolve) => {
      socket.addEventListener(
        'close',
        ({ code, reason }) => {
          const clean = code === 1000 || code === 1001;
          handlers.closed(this.tooBig ?? (clean ? undefined : new Error(`closed with code ${code}${reason ? `: ${reason}` : ''}`)));
          resolve();
        },
        { once: true },
      );
    });
  }

  send(json: string): void {
    this.socket.send(json);
  }

  close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close(1000);
      // The browser ends the connection itself if the server never answers; this only bounds the wait.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
      return Promise.race([this.done, grace]).finally(() => clearTimeout(timer));
    }
    return this.done;
  }
}
