/**
 * The ws:// listener over real WebSockets: one JSON
 * message per text frame, auth before the upgrade, bad input, limits,
 * liveness and slow consumers; frames built once per message and written
 * with the flush, checked byte for byte.
 */
import test, { type ExecutionContext } from 'ava';
import type { Socket } from 'node:net';
import type { ConfigFile } from '../host/config-schema.ts';
import { burstPastTheLimit } from './helpers/bursts.ts';
import { eventually, startTestServer, withoutId } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';
import { watchConnections } from './helpers/watch.ts';
import { fetchText, flood, httpBase, RawWebSocket, websocketUrl, WsClient } from './helpers/web.ts';

const ADMIN = 'admin-secret';

async function wsServer(t: ExecutionContext, config: ConfigFile = {}, query = '') {
  const { server, logs } = await startTestServer(t, { listeners: [`ws://127.0.0.1:0${query}`], ...config });
  return { server, logs, url: server.url('ws') };
}

async function connect(t: ExecutionContext, url: string, query = ''): Promise<WsClient> {
  return WsClient.connect(t, websocketUrl(url, query));
}

test('ping is answered with exactly the ping reply, as one text frame', async (t) => {
  const { url } = await wsServer(t);
  const client = await connect(t, url);
  client.write('{"command":"ping"}');
  t.deepEqual(await client.nextFrame(), { text: '{"command":"ping","tags":[],"data":"pong"}', binary: false });
});

test('the listener URL reports the real port when port 0 was asked', async (t) => {
  const { url } = await wsServer(t);
  t.regex(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.notRegex(url, /:0$/);
});

test('a WebSocket subscriber receives what another WebSocket publishes, the publisher does not', async (t) => {
  const { server, url } = await wsServer(t);
  const subscriber = await connect(t, url);
  const publisher = await connect(t, url);
  t.deepEqual(await subscriber.request({ command: 'subscribe', tags: ['a', 'b'] }), { command: 'subscribe', tags: ['a', 'b'], data: 'success' });
  t.deepEqual(await publisher.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  publisher.send({ command: 'publish', tags: ['a', 'b', 'c'], data: { n: 1 } });
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a', 'b', 'c'], data: { n: 1 } });
  await publisher.sync();
  t.is(publisher.pending, 0, 'the publisher does not receive its own message');
  t.deepEqual(await subscriber.request({ command: 'list' }), { command: 'list', data: '[["a","b"]]' });
  t.is(server.connections.byTransport().get('ws'), 2);
});

test('closing a WebSocket drops its subscriptions', async (t) => {
  const { server, url } = await wsServer(t);
  const client = await connect(t, url);
  await client.request({ command: 'subscribe', tags: ['a'] });
  t.is(server.broker.subscriptionCount, 1);
  client.close();
  await eventually(() => server.broker.subscriptionCount === 0 && server.connections.count === 0);
  t.pass();
});

test('other paths are 404 for upgrades and plain requests; a plain GET of the endpoint is 426', async (t) => {
  const { url } = await wsServer(t);
  const error = await t.throwsAsync(WsClient.connect(t, `${url}/elsewhere`));
  t.is((error as Error & { status?: number }).status, 404);
  t.is((await fetchText(`${httpBase(url)}/elsewhere`)).status, 404);
  const plain = await fetchText(`${httpBase(url)}/subscribe/websocket`);
  t.is(plain.status, 426);
  t.regex(JSON.parse(plain.body).error, /WebSocket/);
});

test('malformed JSON gets an error reply and the connection stays usable', async (t) => {
  const { url } = await wsServer(t);
  const client = await connect(t, url);
  client.write('{"command":');
  const reply = await client.next();
  t.is(reply.command, 'error');
  t.regex(String(reply.error), /^invalid JSON/);
  client.write('[1,2]');
  t.deepEqual(await client.next(), { command: 'error', error: 'a message must be a JSON object' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: [] }), { command: 'subscribe', error: '"subscribe" needs at least one tag' });
  t.deepEqual(await client.request({ command: 'nope' }), { command: 'nope', error: 'Unknown Command' });
  await client.sync();
});

test('a binary frame is read as UTF-8 text; invalid UTF-8 gets an error reply; replies are text frames', async (t) => {
  const { url } = await wsServer(t);
  const client = await connect(t, url);
  client.write(Buffer.from('{"command":"ping"}'));
  t.deepEqual(await client.nextFrame(), { text: '{"command":"ping","tags":[],"data":"pong"}', binary: false });
  client.write(Buffer.from([0xff, 0xfe, 0x7b]));
  t.deepEqual(await client.next(), { command: 'error', error: 'invalid UTF-8' });
  await client.sync();
});

test('a frame over maxMessageBytes gets an error reply, then the connection is closed with 1009', async (t) => {
  const { server, url } = await wsServer(t, { limits: { maxMessageBytes: 1024 } });
  const client = await connect(t, url);
  client.send({ command: 'publish', tags: ['a'], data: 'x'.repeat(1100) });
  t.deepEqual(await client.next(), { command: 'error', error: 'message too long: over 1024 bytes' });
  await client.waitClosed();
  t.is(client.closeCode, 1009);
  await eventually(() => server.connections.count === 0);
});

test('a frame far over maxMessageBytes is cut off by the WebSocket layer with 1009', async (t) => {
  const { url } = await wsServer(t, { limits: { maxMessageBytes: 1024 } });
  const client = await connect(t, url);
  client.write('x'.repeat(200 * 1024));
  await client.waitClosed();
  t.is(client.closeCode, 1009);
});

test('a frame of exactly maxMessageBytes is accepted', async (t) => {
  const { url } = await wsServer(t, { limits: { maxMessageBytes: 1024 } });
  const client = await connect(t, url);
  const head = '{"command":"ping","data":"';
  client.write(head + 'x'.repeat(1024 - head.length - 2) + '"}');
  t.is((await client.next()).data, 'pong');
});

test('bad input on one WebSocket does not disturb another', async (t) => {
  const { url } = await wsServer(t, { limits: { maxMessageBytes: 1024 } });
  const watcher = await connect(t, url);
  await watcher.request({ command: 'subscribe', tags: ['by'] });
  const bad = await connect(t, url);
  bad.write('not json');
  await bad.next();
  bad.write('y'.repeat(5000));
  await bad.waitClosed();
  const publisher = await connect(t, url);
  publisher.send({ command: 'publish', tags: ['by'], data: 'still here' });
  t.deepEqual(withoutId(await watcher.next()), { command: 'publish', tags: ['by'], data: 'still here' });
});

test('with an authenticator, a right token in X-AUTH-TOKEN authenticates the connection', async (t) => {
  const { url } = await wsServer(t, { authenticator: 'memory://', token: ADMIN });
  const client = await WsClient.connect(t, websocketUrl(url), { headers: { 'X-AUTH-TOKEN': ADMIN } });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
});

test('with an authenticator, a right token in ?x-auth-token= authenticates the connection', async (t) => {
  const { server, url } = await wsServer(t, { authenticator: 'memory://', token: ADMIN });
  await server.auth.register('user-token', ['a']);
  const client = await connect(t, url, '?x-auth-token=user-token');
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
});

test('a wrong token is refused with HTTP 401 before the upgrade, and is not logged', async (t) => {
  const { server, url, logs } = await wsServer(t, { authenticator: 'memory://', token: ADMIN });
  for (const attempt of [
    () => WsClient.connect(t, websocketUrl(url), { headers: { 'x-auth-token': 'guess-1' } }),
    () => connect(t, url, '?x-auth-token=guess-2'),
  ]) {
    const error = await t.throwsAsync(attempt());
    t.is((error as Error & { status?: number }).status, 401);
  }
  t.is(server.connections.total, 0, 'no session was opened');
  t.false(JSON.stringify(logs).includes('guess-'));
});

test('without a token the connection opens unauthenticated and may still send auth', async (t) => {
  const { url } = await wsServer(t, { authenticator: 'memory://', token: ADMIN });
  const client = await connect(t, url);
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', error: 'not authenticated: send auth first' });
  t.deepEqual(await client.request({ command: 'auth', data: ADMIN }), { command: 'auth', data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
});

// Serial: alone, this process answers its pongs in time; beside the slow-consumer floods it might not.
test.serial('a peer that does not answer pings is terminated; one that does stays', async (t) => {
  const { server, url } = await wsServer(t, {}, '?ping=200');
  const opened = Date.now();
  const dead = await WsClient.connect(t, websocketUrl(url), { autoPong: false });
  const alive = await connect(t, url);
  await dead.waitClosed(3000);
  t.true(Date.now() - opened >= 400, 'not before two pings went unanswered');
  t.is(dead.closeCode, 1006, 'terminated, without a close frame');
  await new Promise((resolve) => setTimeout(resolve, 700));
  t.false(alive.closed, `closed with ${alive.closeCode}`);
  await alive.sync();
  t.is(server.connections.count, 1);
});

test('an invalid ?ping= is refused at start-up naming it', async (t) => {
  const error = await t.throwsAsync(startTestServer(t, { listeners: ['ws://127.0.0.1:0?ping=soon'] }));
  t.regex(error.message, /cannot listen on ws:\/\/127\.0\.0\.1:0\?ping=soon: \?ping= must be a positive integer/);
});

test('a slow WebSocket subscriber loses messages under the drop policy; the publisher is not slowed', async (t) => {
  const { server, url } = await wsServer(t, { limits: { maxBufferedBytes: 64 * 1024 } });
  const slow = await connect(t, url);
  await slow.request({ command: 'subscribe', tags: ['a'] });
  // Stop reading: the server's buffer for this connection fills up.
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const publisher = await connect(t, url);
  await flood(publisher, ['a'], () => server.connections.delivery.dropped + server.connections.delivery.disconnectedSlow > 0);
  t.true(server.connections.delivery.dropped > 0, 'messages were dropped');
  t.false(slow.closed);
});

test('a slow WebSocket subscriber is closed under the disconnect policy', async (t) => {
  const { server, url } = await wsServer(t, { limits: { maxBufferedBytes: 64 * 1024, slowConsumerPolicy: 'disconnect' } });
  const slow = await connect(t, url);
  await slow.request({ command: 'subscribe', tags: ['a'] });
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const publisher = await connect(t, url);
  await flood(publisher, ['a'], () => server.connections.delivery.dropped + server.connections.delivery.disconnectedSlow > 0);
  await eventually(() => server.connections.delivery.disconnectedSlow === 1 && server.connections.count === 1);
  t.pass();
});

test('closing the server closes every WebSocket and waits for them', async (t) => {
  const { server, url } = await wsServer(t);
  const clients = await Promise.all([connect(t, url), connect(t, url)]);
  await server.close();
  t.is(server.connections.count, 0);
  await Promise.all(clients.map((client) => client.waitClosed()));
  t.pass();
});

// ---------------------------------------------------------------------------
// Output: each message framed once, every connection's frames written with the flush.

test('every subscriber gets the same bytes for a message: one final, unmasked text frame, its length in 7, 16 or 64 bits', async (t) => {
  const { url } = await wsServer(t);
  const raws = await Promise.all([0, 1, 2].map(() => RawWebSocket.connect(t, websocketUrl(url))));
  const clients = await Promise.all([0, 1].map(() => connect(t, url)));
  for (const raw of raws) {
    raw.send({ command: 'subscribe', tags: ['f'] });
    t.like(JSON.parse((await raw.nextFrame()).payload.toString()), { command: 'subscribe', data: 'success' });
  }
  for (const client of clients) await client.request({ command: 'subscribe', tags: ['f'] });
  const publisher = await connect(t, url);
  // A 16-bit length stops at 65,535 bytes: the last one needs the 64-bit form.
  const sizes = [10, 1000, 70 * 1024];
  for (const size of sizes) publisher.send({ command: 'publish', tags: ['f'], data: 'x'.repeat(size) });
  for (const size of sizes) {
    const frames = await Promise.all(raws.map((raw) => raw.nextFrame()));
    const first = frames[0]!;
    t.like(first, { fin: true, rsv: 0, opcode: 1, masked: false });
    t.is(first.headerLength, first.payload.length < 126 ? 2 : first.payload.length < 0x10000 ? 4 : 10);
    t.like(JSON.parse(first.payload.toString()), { command: 'publish', tags: ['f'], data: 'x'.repeat(size) });
    for (const frame of frames) t.true(frame.bytes.equals(first.bytes), 'byte for byte the same frame');
    for (const client of clients) t.deepEqual(await client.nextFrame(), { text: first.payload.toString(), binary: false });
  }
});

test('replies and deliveries keep their order on one WebSocket', async (t) => {
  const { url } = await wsServer(t);
  const client = await connect(t, url);
  const publisher = await connect(t, url);
  await client.request({ command: 'subscribe', tags: ['x'] });
  publisher.send({ command: 'publish', tags: ['x'], data: 1 });
  await publisher.sync();
  client.send({ command: 'ping' });
  client.send({ command: 'subscribe', tags: ['y'] });
  publisher.send({ command: 'publish', tags: ['x', 'y'], data: 2 });
  t.like(await client.next(), { command: 'publish', data: 1 });
  // Message 2 comes between the replies or after them, as the two connections' input is handled; the replies
  // come in the order asked, and the message once.
  const rest = [await client.next(), await client.next(), await client.next()];
  const replies = rest.filter((frame) => frame.command !== 'publish');
  t.like(replies, [{ command: 'ping', data: 'pong' }, { command: 'subscribe', tags: ['y'] }]);
  t.like(
    rest.filter((frame) => frame.command === 'publish'),
    [{ data: 2 }],
  );
  await client.sync();
  t.is(client.pending, 0);
});

test('bytes queued for the next flush count towards maxBufferedBytes: a burst past the limit within one flush is partly dropped, in order', async (t) => {
  const { server, url } = await wsServer(t, { limits: { maxBufferedBytes: 1024, flushIntervalMs: 50 } });
  const sub = await connect(t, url);
  await sub.request({ command: 'subscribe', tags: ['q'] });
  await burstPastTheLimit(t, server, sub);
});

test('pipelined pings from a WebSocket client that reads nothing all get their pong once it reads; the server holds back its input meanwhile', async (t) => {
  const LIMIT = 16 * 1024;
  const { server, url } = await wsServer(t, { limits: { maxBufferedBytes: LIMIT } });
  const watched = watchConnections(server);
  const client = await connect(t, url);
  const socket = (client.ws as unknown as { _socket: Socket })._socket;
  socket.pause();
  await eventually(() => watched.has(socket.localPort!), WAIT_MS, 'the session opened');
  const entry = watched.get(socket.localPort!)!;
  // The kernel's socket buffers take megabytes first: ping until replies pile up in the server.
  let sent = 0;
  while (entry.sink.bufferedBytes <= LIMIT && sent < 2_000_000) {
    if (socket.writableLength === 0) {
      for (let i = 0; i < 10_000; i++) client.write('{"command":"ping"}');
      sent += 10_000;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.true(entry.sink.bufferedBytes > LIMIT, `replies piled up after ${sent} pings`);
  socket.resume();
  for (let i = 0; i < sent; i++) {
    const reply = await client.nextFrame();
    if (reply.text !== '{"command":"ping","tags":[],"data":"pong"}') return t.fail(`reply ${i} was ${reply.text}`);
  }
  await client.sync();
  t.is(server.connections.delivery.dropped, 0);
  // Held back, the server queued at most one reply past the limit (a pong's frame: 2 bytes of header, 42 of JSON).
  t.true(entry.maxBuffered <= LIMIT + 44, `at most ${entry.maxBuffered} bytes queued`);
});

test('a client that offers permessage-deflate gets plain frames: the server agrees to no compression', async (t) => {
  const { url } = await wsServer(t);
  const client = await WsClient.connect(t, websocketUrl(url), { perMessageDeflate: true });
  t.is(client.ws.extensions, '', 'nothing negotiated');
  const raw = await RawWebSocket.connect(t, websocketUrl(url), { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' });
  await client.request({ command: 'subscribe', tags: ['z'] });
  raw.send({ command: 'subscribe', tags: ['z'] });
  await raw.nextFrame();
  const publisher = await connect(t, url);
  const data = 'y'.repeat(100 * 1024);
  publisher.send({ command: 'publish', tags: ['z'], data });
  t.like(await client.next(), { data });
  const frame = await raw.nextFrame();
  t.is(frame.rsv, 0, 'not compressed');
  t.like(JSON.parse(frame.payload.toString()), { data });
});

test('a WebSocket the server closes gets every frame queued before the close frame', async (t) => {
  // A long interval, so that what is published after the first message waits in the queue.
  const { server, url } = await wsServer(t, { limits: { flushIntervalMs: 1000 } });
  const sub = await connect(t, url);
  await sub.request({ command: 'subscribe', tags: ['c'] });
  for (let seq = 0; seq < 3; seq++) {
    server.broker.publish(undefined, ['c'], String(seq));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await server.close();
  for (let seq = 0; seq < 3; seq++) t.like(await sub.next(), { data: seq });
  await sub.waitClosed();
  t.is(sub.closeCode, 1001);
});
