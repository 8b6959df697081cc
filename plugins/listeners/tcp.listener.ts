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

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Resolve only once every session has seen its socket close, so the server is really empty.
      const sockets = [...this.sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
      const server = new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
      for (const socket of this.sockets) socket.destroy();
      for (const connection of this.connections) connection.destroy();
      await Promise.all([server, ...sockets]);
    })();
    return this.closing;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const { remoteAddress, remotePort } = socket;
    this.context.serveSocket(socket, { transport: this.scheme, remote: `${remoteAddress}:${remotePort}`, address: remoteAddress });
    socket.once('close', () => this.sockets.delete(socket));
  }
}
