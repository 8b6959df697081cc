/**
 * Unfinished input over real sockets: the server-wide budget for lines
 * under way (`maxPendingInputBytes`) and the line timeout (`lineTimeoutMs`)
 * on TCP, the bound on a WebSocket frame's pieces. A connection over any
 * is closed; the others carry on; the memory and the timers go when the
 * connections do.
 */
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import test from 'ava';
import { Hold } from './helpers/hold.ts';
import { eventually, LineClient, startTestServer, type LogLines } from './helpers/server.ts';
import { websocketUrl, WsClient } from './helpers/web.ts';

const HEAD = '{"command":"publish","tags":["budget"],"data":"';

/** Warnings and debug lines logged for connections closed for their input. */
function refusalLogs(logs: LogLines, level: 'warn' | 'debug'): LogLines {
  return logs.filter((line) => line.level === level && String(line.msg).startsWith('connection closed: '));
}

/** Timers and TCP handles created from now on and not yet gone (timers unref'd included, which getActiveResourcesInfo leaves out). */
function trackResources(): { alive: Map<number, string>; stop(): void } {
  const alive = new Map<number, string>();
  const kinds = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP']);
  const hook = createHook({
    init: (id, type) => kinds.has(type) && alive.set(id, type),
    destroy: (id) => alive.delete(id),
  }).enable();
  return { alive, stop: () => hook.disable() };
}

test.serial('timers and sockets are all gone once the server has closed, and so is the memory of lines under way', async (t) => {
  const resources = trackResources();
  t.teardown(() => resources.stop());
  const { server } = await startTestServer(t, { limits: { lineTimeoutMs: 100 } });
  const url = server.url('tcp');
  const clients = await Promise.all([1, 2, 3].map(() => LineClient.connect(t, url)));
  clients[0]!.write('{"command":"pi');
  clients[1]!.write('{"command":"publish","tags":["a"],"data":"');
  await eventually(() => server.pendingInput.bytes > 0);
  // The first is refused for its line: the sweep and the warning summary both have timers running.
  t.deepEqual(await clients[0]!.next(), { command: 'error', error: 'line unfinished for 100 ms' });
  await server.close();
  for (const client of clients) await client.waitClosed();
  t.is(server.pendingInput.bytes, 0);
  // Node reports a handle gone a few event-loop turns after it closes, not at once.
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual([...resources.alive.values()], []);
});

test('the connection whose unfinished line takes the server over maxPendingInputBytes is refused and closed; the others carry on', async (t) => {
  const budget = 100_000;
  const { server, logs } = await startTestServer(t, { limits: { maxPendingInputBytes: budget } });
  const url = server.url('tcp');
  const watcher = await LineClient.connect(t, url);
  t.deepEqual(await watcher.request({ command: 'subscribe', tags: ['budget'] }), { command: 'subscribe', tags: ['budget'], data: 'success' });
  const [first, second, bystander] = await Promise.all([1, 2, 3].map(() => LineClient.connect(t, url)));

  // Two lines under way of 20 kB each: a line holds at most twice its bytes, so together they fit.
  first!.write(HEAD + 'a'.repeat(20_000 - HEAD.length));
  await eventually(() => server.pendingInput.bytes >= 20_000);
  second!.write(HEAD + 'b'.repeat(20_000 - HEAD.length));
  await eventually(() => server.pendingInput.bytes >= 40_000);
  t.true(server.pendingInput.bytes <= 80_000, `${server.pendingInput.bytes} bytes held`);

  // The first line grows past what is left.
  first!.write('a'.repeat(70_000));
  t.deepEqual(await first!.next(), {
    command: 'error',
    error: 'server input budget exhausted: no room for more of this unfinished line (maxPendingInputBytes)',
  });
  await first!.waitClosed();
  await eventually(() => server.pendingInput.bytes <= 40_000, 5000, "the closed connection's memory released");

  await bystander!.sync();
  second!.write('b"}\n');
  const message = await watcher.next();
  t.is(message.command, 'publish');
  t.is((message.data as string).length, 20_000 - HEAD.length + 1);
  await second!.sync();
  t.is(server.pendingInput.bytes, 0, 'a finished line releases its memory');

  // With the budget back, a new connection holds a line as big as the refused one was when it fit.
  const third = await LineClient.connect(t, url);
  third.write('x'.repeat(45_000));
  await eventually(() => server.pendingInput.bytes >= 45_000);
  await bystander!.sync();
  t.false(third.closed);
  third.close();
  await eventually(() => server.pendingInput.bytes === 0, 5000, 'a closed connection releases its memory');

  const metrics = await server.metrics.render();
  t.regex(metrics, /^mist_input_refusals_total\{reason="budget"\} 1$/m);
  t.regex(metrics, /^mist_input_refusals_total\{reason="lineTimeout"\} 0$/m);
  t.regex(metrics, /^mist_pending_input_bytes 0$/m);
  const [warning, ...more] = refusalLogs(logs, 'warn');
  t.is(more.length, 0);
  t.like(warning, { msg: 'connection closed: server input budget exhausted', reason: 'budget', transport: 'tcp' });
});

test('a line left unfinished for lineTimeoutMs gets an error reply and its connection is closed; idle connections stay', async (t) => {
  const { server, logs } = await startTestServer(t, { limits: { lineTimeoutMs: 200 } });
  const url = server.url('tcp');
  const idle = await LineClient.connect(t, url);
  await idle.sync();
  const slow = await LineClient.connect(t, url);
  slow.write('{"command":"pi');
  t.deepEqual(await slow.next(), { command: 'error', error: 'line unfinished for 200 ms' });
  await slow.waitClosed();
  await idle.sync();
  t.is(server.pendingInput.bytes, 0);
  t.regex(await server.metrics.render(), /^mist_input_refusals_total\{reason="lineTimeout"\} 1$/m);
  t.like(refusalLogs(logs, 'warn'), [{ msg: 'connection closed: line left unfinished', reason: 'lineTimeout' }]);
});

test('a line does not time out while the server holds back reading it, behind an asynchronous command', async (t) => {
  const hold = new Hold();
  const { server } = await startTestServer(t, { limits: { lineTimeoutMs: 200 } }, [hold.plugin]);
  const url = server.url('tcp');
  const held = await LineClient.connect(t, url);
  held.write('{"command":"hold"}\n{"command":"pi');
  await hold.whenStarted();
  // A line that began later times out: the held one has waited longer, but not on its client.
  const slow = await LineClient.connect(t, url);
  slow.write('{"command":"pi');
  t.is((await slow.next()).error, 'line unfinished for 200 ms');
  t.false(held.closed);
  // The rest of the line waits unread until the hold ends, then finishes it at once.
  held.write('ng"}\n');
  hold.release();
  t.deepEqual(await held.next(), { command: 'hold', data: 'released' });
  t.deepEqual(await held.next(), { command: 'ping', tags: [], data: 'pong' });
});

test('connections closed for their input are logged at DEBUG each, and at WARN once and then in a summary', async (t) => {
  const { server, logs } = await startTestServer(t, { limits: { lineTimeoutMs: 100 } });
  const url = server.url('tcp');
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => LineClient.connect(t, url)));
  for (const client of clients) client.write('{"command":"pi');
  for (const client of clients) await client.waitClosed();
  t.is(refusalLogs(logs, 'warn').length, 1);
  t.is(refusalLogs(logs, 'debug').length, 4);
  await server.close();
  t.like(logs.filter((line) => line.level === 'warn').at(-1), {
    msg: '4 more connections closed for their unfinished input since the last warning',
    budget: 0,
    lineTimeout: 4,
  });
});

test('a WebSocket frame sent in many tiny pieces is refused with 1008 before it holds much; other WebSockets carry on', async (t) => {
  // maxPayload is then 1 KiB + 64 KiB: a frame may come in at most 130 pieces.
  const { server } = await startTestServer(t, { listeners: ['ws://127.0.0.1:0'], limits: { maxMessageBytes: 1024 } });
  const { hostname, port } = new URL(server.url('ws'));
  const bystander = await WsClient.connect(t, websocketUrl(server.url('ws')));
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(
    `GET /subscribe/websocket HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await eventually(() => received.includes('\r\n\r\n'));
  t.regex(received.toString('latin1'), /^HTTP\/1\.1 101 /);
  received = Buffer.alloc(0);
  // A masked text frame of 60,000 bytes (mask 0: the payload goes as is), then its payload a byte per event-loop turn.
  socket.write(Buffer.from([0x81, 0x80 | 126, 60_000 >> 8, 60_000 & 0xff, 0, 0, 0, 0]));
  let sent = 0;
  while (sent < 60_000 && !socket.destroyed && socket.readyState === 'open') {
    socket.write('x');
    sent++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await closed;
  t.true(sent < 60_000, `closed after ${sent} bytes`);
  // The server's close frame: opcode 8, code 1008.
  t.is(received[0], 0x88);
  t.is(received.readUInt16BE(2), 1008);
  t.deepEqual(await bystander.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
});
