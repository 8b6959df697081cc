/** Newline-delimited JSON over TCP (or TLS), one message per line. */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { LineFramer } from '../core/framing.ts';
import { KEEPALIVE_MS } from '../core/wire.ts';
import { ClientErrorCodes, MistClientError } from './errors.ts';
import { connectionError, DEFAULT_PORTS, type Transport, type TransportHandlers, type TransportOptions } from './transport.ts';

/** How long a graceful close may wait for the server's end before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export function openTcp(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(url.port || DEFAULT_PORTS[url.protocol]);
  const secure = url.protocol === 'tls:';
  return new Promise((resolve, reject) => {
    const socket: Socket = secure
      ? // SNI takes a host name, never an address.
        tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...options.tls })
      : netConnect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy(new Error(`no connection within ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);
    const failed = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(connectionError(url, err));
    };
    socket.once('error', failed);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      resolve(new TcpTransport(socket, options, handlers));
    });
  });
}

class TcpTransport implements Transport {
  readonly sentToken = false;
  private lastError: Error | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly socket: Socket,
    options: TransportOptions,
    handlers: TransportHandlers,
  ) {
    socket.setNoDelay(true);
    // Finds a peer that vanished without a FIN (a host that went down), on an otherwise idle subscriber.
    socket.setKeepAlive(true, KEEPALIVE_MS);
    const framer = new LineFramer(options.maxMessageBytes, {
      line: (bytes) => handlers.message(bytes.toString()),
      oversized: () =>
        socket.destroy(new MistClientError(ClientErrorCodes.CONNECTION, `the server sent a message over ${options.maxMessageBytes} bytes`)),
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (err) => (this.lastError = err));
    // A server that half-closes is done with us: close our side too.
    socket.on('end', () => socket.end());
    this.done = new Promise((resolve) => {
      socket.once('close', () => {
        handlers.closed(this.lastError);
        resolve();
      });
    });
  }

  send(json: string): void {
    this.socket.write(json + '\n');
  }

  close(): Promise<void> {
    if (!this.socket.destroyed) {
      // end() lets what was written reach the server; destroy() if it does not answer with its own end.
      this.socket.end();
      // Not unref'd: close() must settle even when nothing else keeps the process alive.
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      void this.done.then(() => clearTimeout(timer));
    }
    return this.done;
  }
}
