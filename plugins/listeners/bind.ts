/** Binding a listener's server to its URI's address: shared by the TCP-based and HTTP-based listeners. */
import type { AddressInfo, Server } from 'node:net';

/**
 * Binds `server` to the host and port of `address` (`defaultPort` when the
 * URI names none; 0 picks a free one) and resolves with the port bound. An
 * error while binding rejects; later ones (say, EMFILE on accept) go to
 * `onError`, so they do not crash the process.
 */
export function bind(server: Server, address: URL, defaultPort: number, onError: (err: Error) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // `[::1]` arrives bracketed from URL; net wants it bare.
    const host = address.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    server.listen(Number(address.port || defaultPort), host, () => {
      server.off('error', reject);
      server.on('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
