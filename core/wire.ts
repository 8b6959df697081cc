/**
 * What the two ends of a connection agree on besides the messages
 * (protocol.ts): where the WebSocket endpoint is, and how long an idle TCP
 * connection waits before keepalive probes. The client imports this module,
 * so it has no Node-only import and nothing of the server.
 */

/** The path of the WebSocket endpoint that the ws and http listeners serve. */
export const WEBSOCKET_PATH = '/subscribe/websocket';

/**
 * Idle time before TCP keepalive probes start, on both ends: a peer that
 * vanished without a FIN or RST (a pulled cable, a dead NAT entry) is found
 * and its connection closed.
 */
export const KEEPALIVE_MS = 30_000;
