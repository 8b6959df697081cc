/**
 * A test-only WebSocket front for a mist TCP server, until the real ws
 * listener lands (issue 4): each text frame becomes one line on a TCP
 * session of its own, each line back becomes one text frame. Like the real
 * listener it serves `/subscribe/websocket` and, given a token, refuses any
 * other `X-AUTH-TOKEN` header or `x-auth-token` query parameter with HTTP
 * 401 before the upgrade.
 */
import { connect } from 'node:net';
import type { ExecutionContext } from 'ava';
import { WebSocketServer } from 'ws';

export interface WsBridge {
  /** `ws://127.0.0.1:PORT` */
  url: string;
  close(): Promise<void>;
}

/** Bridges to whatever `target()` returns at each connection, so the server behind may be restarted. */
export async function startWsBridge(t: ExecutionContext, target: () => string, options: { token?: string } = {}): Promise<WsBridge> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    path: '/subscribe/websocket',
    verifyClient: (info, done) => {
      if (options.token === undefined) return done(true);
      const query = new URL(info.req.url ?? '/', 'http://x').searchParams.get('x-auth-token');
      const token = info.req.headers['x-auth-token'] ?? query;
      if (token === options.token) done(true);
      else done(false, 401, 'Unauthorized');
    },
  });
  wss.on('connection', (ws) => {
    const { hostname, port } = new URL(target());
    const tcp = connect(Number(port), hostname);
    let buffer = '';
    tcp.setEncoding('utf8');
    tcp.on('data', (text: string) => {
      buffer += text;
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        ws.send(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
      }
    });
    tcp.on('error', () => {});
    // The server went away: so does the WebSocket, abruptly, as a crashed listener's would.
    tcp.on('close', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      if (!isBinary) tcp.write(data.toString() + '\n');
    });
    ws.on('close', () => tcp.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const { port } = wss.address() as { port: number };
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    }));
  t.teardown(close);
  return { url: `ws://127.0.0.1:${port}`, close };
}
