/**
 * `tcp://host:port` — newline-delimited JSON over TCP.
 * Port 0 picks a free port; `url` then holds the real one.
 */
import { createServer, type Server, type Socket } from 'node:net';
// Only what the package exports, as a third-party plugin would import from 'mist'.
import { definePlugin, type Listener, type ListenerContext } from '../../host/index.ts';
import { bind } from './bind.ts';

export default definePlugin({
  name: 'tcp',
  register(api) {
    api.listeners.register('tcp', (url, context) => new TcpListener(url, context));
  },
});

/** How a {@link TcpListener} is varied for TLS (tls.listener.ts). */
export interface TcpListenerOptions {
  /** The scheme of `url` and the transport sessions report; default `tcp`. */
  scheme?: string;
  /** Makes the server, calling `accept` for each connection ready to talk; default a plain TCP server. */
  createServer?: (accept: (socket: Socket) => void) => Server | Promise<Server>;
}

export class TcpListener implements Listener {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /**
   * Every TCP connection, including a TLS one still in its handshake, which
   * has no session yet (a client that refused the certificate and half-closed
   * is one) but would hold up `server.close()`.
   */
  private readonly connections = new Set<Socket>();
  private stopped: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  url: string;

  private readonly scheme: string;

  constructor(
    private readonly address: URL,
    private readonly context: ListenerContext,
    private readonly options: TcpListenerOptions = {},
  ) {
    this.url = address.href;
    this.scheme = options.scheme ?? 'tcp';
  }

  async listen(): Promise<void> {
    const accept = (socket: Socket): void => this.accept(socket);
    // Half-open: a client that ends its side still gets the replies to what it sent.
    const server = await (this.options.createServer?.(accept) ?? createServer({ allowHalfOpen: true }, accept));
    this.server = server;
    server.on('connection', (connection: Socket) => {
      this.connections.add(connection);
      connection.once('close', () => this.connections.delete(connection));
    });
    const port = await bind(server, this.address, 1445, (err) =>
      this.context.logger.error({ err, url: this.url }, `${this.scheme} listener error`),
    );
    this.url = `${this.scheme}://${this.address.hostname}:${port}`;
  }

  /** Stops accepting; resolves once every socket served has closed (the server ends their sessions). */
  async drain(): Promise<void> {
    this.stopAccepting();
    await this.socketsClosed();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = [this.stopAccepting(), this.socketsClosed()];
      for (const socket of this.sockets) socket.destroy();
      for (const connection of this.connections) connection.destroy();
      await Promise.all(closed);
    })();
    return this.closing;
  }

  /** Closes the server to new connections; resolves once every connection it accepted is closed. */
  private stopAccepting(): Promise<void> {
    this.stopped ??= new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    return this.stopped;
  }

  /** Resolves once every session has seen its socket close, so that the server is really empty. */
  private socketsClosed(): Promise<unknown> {
    return Promise.all([...this.sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve))));
  }

  private accept(socket: Socket): void {
    // A TLS handshake that ends while draining: too late for a session.
    if (this.stopped) return void socket.destroy();
    this.sockets.add(socket);
    const { remoteAddress, remotePort } = socket;
    this.context.serveSocket(socket, { transport: this.scheme, remote: `${remoteAddress}:${remotePort}`, address: remoteAddress });
    socket.once('close', () => this.sockets.delete(socket));
  }
}
