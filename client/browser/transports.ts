/**
 * The client's transports in a browser (client/transports.ts in Node.js):
 * WebSocket only, the browser's own.
 */
import type { TransportOpener } from '../transport.ts';
import { openBrowserWebSocket } from './websocket.transport.ts';

export const TRANSPORTS: Readonly<Record<string, TransportOpener>> = {
  'ws:': openBrowserWebSocket,
  'wss:': openBrowserWebSocket,
};
