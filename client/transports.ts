/**
 * The client's transports in Node.js, by URL scheme. The browser build
 * bundles browser/transports.ts in this module's place.
 */
import { openTcp } from './tcp.transport.ts';
import type { TransportOpener } from './transport.ts';

// `ws` is loaded by the first WebSocket connection only: a TCP client (`mist ping`) starts without it.
const openWebSocket: TransportOpener = async (url, options, handlers) => (await import('./ws.transport.ts')).openWebSocket(url, options, handlers);

export const TRANSPORTS: Readonly<Record<string, TransportOpener>> = {
  'tcp:': openTcp,
  'tls:': openTcp,
  'ws:': openWebSocket,
  'wss:': openWebSocket,
};
