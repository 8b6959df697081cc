/**
 * `tls://host:port` — the newline-delimited JSON protocol of tcp:// over
 * TLS. Certificate and key from `?cert=PATH&key=PATH`, else the
 * config's `tls`, else a self-signed certificate whose SHA-256 fingerprint
 * is logged. Port 0 picks a free port; an omitted one is 1445.
 */
import { createServer } from 'node:tls';
import { definePlugin } from '../../host/index.ts';
import { TcpListener } from './tcp.listener.ts';
import { tlsCredentials } from './tls-credentials.ts';

export default definePlugin({
  name: 'tls',
  register(api) {
    const { tls } = api.config;
    api.listeners.register(
      'tls',
      (url, context) =>
        new TcpListener(url, context, {
          scheme: 'tls',
          createServer: async (accept) => {
            const credentials = await tlsCredentials(url, tls, context.logger);
            const server = createServer({ ...credentials, allowHalfOpen: true }, accept);
            // A failed handshake (a plain-TCP client, a scanner) concerns that connection only. Its
            // socket never reached `accept`, so close it here or it would hold up the server's close.
            server.on('tlsClientError', (err, socket) => {
              context.logger.debug({ err }, 'tls handshake failed');
              socket.destroy();
            });
            return server;
          },
        }),
    );
  },
});
