/**
 * What one write costs in Node, by the way it is made: `npm run bench --
 * writes` flushes batches of 160-byte messages to 100 loopback connections
 * (read and discarded by a child process), a flush an event-loop turn, and
 * times this process's CPU (`process.cpuUsage`: JavaScript, Node's stream
 * layer, the event loop and the syscalls, which on loopback also run the
 * receiver's TCP path). Per connection and flush, the batch goes out
 *
 * - TCP: as one `socket.write` per message; corked, one `write` per message
 *   and uncorked (one `writev`); concatenated into one `socket.write` (mist);
 *   and, as the floor under all of them, concatenated and written with
 *   write(2) straight to the socket's descriptor (`fs.writeSync`), bypassing
 *   the stream, the `WriteWrap` and libuv's write queue;
 * - WebSocket: one `ws.send` per message (mist before: ws frames each
 *   message, header and payload in one `writev`); framed once and
 *   concatenated into one `socket.write` (mist now);
 * - SSE: one `res.write` per event (mist before); concatenated into one
 *   `res.write` (Node's http layer corks the socket and writes the chunk in
 *   four pieces, one `writev` on the next tick); concatenated, framed as one
 *   HTTP chunk and written to the socket in one `socket.write` (mist now).
 *
 * No verdicts: the figures say which way of writing to use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { chunk } from '../plugins/listeners/sse.ts';
import { fmt, median, table } from './lib.ts';

const CONNECTIONS = 100;
const MESSAGE = Buffer.from(`{"command":"publish","tags":["fan","blue","green","red"],"data":"#0,1,1,${'x'.repeat(93)}"}\n`);
const ROUNDS = 2000;
const REPEATS = 3;

/** The child that reads: connects, sends `hello` on each connection, discards everything. */
const READER = `
import { connect } from 'node:net';
const [port, count, hello] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
let open = 0;
for (let i = 0; i < count; i++) {
  const socket = connect(port, '127.0.0.1', () => socket.write(hello.replaceAll('\\\\n', '\\r\\n')));
  socket.on('data', () => {});
  socket.on('error', () => {});
  open++;
  socket.on('close', () => --open === 0 && process.exit(0));
}`;

interface Way {
  transport: 'tcp' | 'ws' | 'sse';
  name: string;
  /** What one message is, as this way hands it over. */
  unit: Buffer;
  /** Writes one batch (`messages`: `unit`, repeated) to one connection. */
  flush(connection: unknown, messages: Buffer[]): void;
}

const JSON_TEXT = MESSAGE.subarray(0, -1);
/** A server's WebSocket text frame (unmasked, 16-bit length), as mist builds it once per message. */
const WS_FRAME = Buffer.concat([Buffer.from([0x81, 126, JSON_TEXT.length >> 8, JSON_TEXT.length & 0xff]), JSON_TEXT]);
const SSE_EVENT = Buffer.from(`event: publish\ndata: ${JSON_TEXT.toString()}\n\n`);
/** The socket's file descriptor, read from its libuv handle (not public API: for the floor row only). */
const descriptor = (socket: Socket): number => (socket as unknown as { _handle: { fd: number } })._handle.fd;
const concat = (messages: Buffer[]) => (messages.length === 1 ? messages[0]! : Buffer.concat(messages));

const WAYS: Way[] = [
  { transport: 'tcp', name: 'socket.write per message', unit: MESSAGE, flush: (s, m) => m.forEach((b) => (s as Socket).write(b)) },
  {
    transport: 'tcp',
    name: 'cork, write each, uncork (writev)',
    unit: MESSAGE,
    flush: (s, m) => {
      const socket = s as Socket;
      socket.cork();
      for (const b of m) socket.write(b);
      socket.uncork();
    },
  },
  { transport: 'tcp', name: 'concat, one socket.write (mist)', unit: MESSAGE, flush: (s, m) => (s as Socket).write(concat(m)) },
  // Not a way to write (it blocks on a full socket and reaches below the public API): the floor under every
  // public path, a write(2) of the socket's descriptor with nothing of Node's stream layer around it.
  { transport: 'tcp', name: 'concat, write(2) of the descriptor (fs.writeSync; a floor, not a way)', unit: MESSAGE, flush: (s, m) => writeSync(descriptor(s as Socket), concat(m)) },
  { transport: 'ws', name: 'ws.send per message (mist before)', unit: JSON_TEXT, flush: (w, m) => m.forEach((b) => (w as { ws: WebSocket }).ws.send(b, { binary: false })) },
  { transport: 'ws', name: 'framed once, concat, one socket.write (mist)', unit: WS_FRAME, flush: (w, m) => (w as { socket: Socket }).socket.write(concat(m)) },
  { transport: 'sse', name: 'res.write per event (mist before)', unit: SSE_EVENT, flush: (r, m) => m.forEach((b) => (r as ServerResponse).write(b)) },
  { transport: 'sse', name: 'concat, one res.write', unit: SSE_EVENT, flush: (r, m) => (r as ServerResponse).write(concat(m)) },
  {
    transport: 'sse',
    name: 'concat, one chunk, one socket.write (mist)',
    unit: SSE_EVENT,
    flush: (r, m) => (r as ServerResponse).socket!.write(chunk(concat(m))),
  },
];

/** A server of `transport` on a free port with CONNECTIONS readers connected; resolves with its connections. */
async function serve(transport: Way['transport']): Promise<{ connections: unknown[]; close: () => Promise<void> }> {
  const connections: unknown[] = [];
  let server: Server;
  let hello: string;
  let ready!: () => void;
  const all = new Promise<void>((resolve) => (ready = resolve));
  const add = (connection: unknown) => connections.push(connection) === CONNECTIONS && ready();
  if (transport === 'tcp') {
    server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.once('data', () => add(socket));
    });
    hello = 'hello';
  } else if (transport === 'ws') {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    server = createHttpServer();
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => add({ ws, socket })));
    hello = 'GET / HTTP/1.1\\nHost: x\\nUpgrade: websocket\\nConnection: Upgrade\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\nSec-WebSocket-Version: 13\\n\\n';
  } else {
    server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ok\n\n');
      add(res);
    });
    hello = 'GET /events HTTP/1.1\\nHost: x\\n\\n';
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const reader: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', READER, String(port), String(CONNECTIONS), hello], { stdio: 'inherit' });
  await all;
  // Let the handshakes' own writes settle.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    connections,
    close: async () => {
      const exited = new Promise((resolve) => reader.once('exit', resolve));
      for (const c of connections) {
        if (transport === 'tcp') (c as Socket).destroy();
        else if (transport === 'ws') (c as { ws: WebSocket }).ws.terminate();
        else (c as ServerResponse).destroy();
      }
      // The reader exits once its last connection closes.
      await exited;
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** CPU µs per message (user, system) of `way`'s writes, `batch` messages per connection per flush. */
async function measure(way: Way, connections: unknown[], batch: number): Promise<{ user: number; system: number }> {
  const messages = new Array<Buffer>(batch).fill(way.unit);
  // A flush a turn, as a server's: the turn counts too, since Node finishes some writes in it (the http layer
  // uncorks its socket on the next tick; streams call back after writes on the next tick).
  const before = process.cpuUsage();
  for (let round = 0; round < ROUNDS; round++) {
    for (const connection of connections) way.flush(connection, messages);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { user, system } = process.cpuUsage(before);
  const deliveries = ROUNDS * connections.length * batch;
  return { user: user / deliveries, system: system / deliveries };
}

export async function writesBench(): Promise<void> {
  console.log(`\n## writes — CPU per message of the writing calls, ${CONNECTIONS} loopback connections, ${MESSAGE.length}-byte messages, ${REPEATS} repeats (median)\n`);
  const rows: Array<Array<string | number>> = [];
  for (const transport of ['tcp', 'ws', 'sse'] as const) {
    const { connections, close } = await serve(transport);
    try {
      const ways = WAYS.filter((w) => w.transport === transport);
      for (const batch of [1, 2, 8]) {
        const results = new Map<Way, Array<{ user: number; system: number }>>();
        // Interleaved, so that the machine's noise hits every way alike.
        for (let repeat = 0; repeat < REPEATS; repeat++) {
          for (const way of ways) results.set(way, [...(results.get(way) ?? []), await measure(way, connections, batch)]);
        }
        for (const way of ways) {
          const runs = results.get(way)!;
          const user = median(runs.map((r) => r.user));
          const system = median(runs.map((r) => r.system));
          rows.push([transport, way.name, batch, fmt(user + system), fmt(user), fmt(system)]);
        }
      }
    } finally {
      await close();
    }
  }
  table(['transport', 'how', 'messages per flush', 'CPU µs/message', 'user', 'kernel'], rows);
}
