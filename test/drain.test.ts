/**
 * Graceful shutdown, over real sockets: `MistServer.close()` stops
 * accepting and reading, answers every command already read (those held
 * back behind an asynchronous command included), delivers what they
 * published, flushes, and only then closes each connection; whatever is
 * still open after `shutdownTimeoutMs` is destroyed. And `mist --server`
 * does that on SIGTERM, then exits 0.
 */
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import test from 'ava';
import { decodeEnvelope } from '../core/cluster.ts';
import type { Message } from '../core/protocol.ts';
import type { Sink } from '../core/session.ts';
import { definePlugin } from '../host/api.ts';
import { Hold } from './helpers/hold.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { eventually, LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { SseClient, WsClient, websocketUrl } from './helpers/web.ts';

const N = 100;
const TAGS = ['drain'];

/** `hold`, then N publishes on TAGS, each followed by a ping: what a client sends in one go. */
function heldBatch(): Message[] {
  const batch: Message[] = [{ command: 'hold' }];
  for (let i = 0; i < N; i++) batch.push({ command: 'publish', tags: TAGS, data: String(i) }, { command: 'ping' });
  return batch;
}

/** Reads `count` messages with `next`, then expects the connection to close. */
async function readToClose(next: () => Promise<Message>, count: number, waitClosed: () => Promise<void>): Promise<Message[]> {
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) messages.push(await next());
  await waitClosed();
  return messages;
}

const pongs = Array.from({ length: N }, () => ({ command: 'ping', tags: [], data: 'pong' }));
const published = Array.from({ length: N }, (_, i) => ({ command: 'publish', tags: TAGS, data: String(i) }));

test('tcp: a client pipelining publishes and pings behind an asynchronous command gets every answer, its subscriber every message, then both are closed', async (t) => {
  const hold = new Hold();
  const { server } = await startTestServer(t, {}, [hold.plugin]);
  const url = server.url('tcp');
  const subscriber = await LineClient.connect(t, url);
  await subscriber.request({ command: 'subscribe', tags: TAGS });
  const client = await LineClient.connect(t, url);
  // One write: the server reads it at once and holds all but the hold back while the hold runs.
  client.write(heldBatch().map((message) => JSON.stringify(message) + '\n').join(''));
  await hold.whenStarted();
  const closed = server.close();
  hold.release();
  const answers = readToClose(() => client.next(), 1 + N, () => client.waitClosed());
  const messages = readToClose(async () => withoutId(await subscriber.next()), N, () => subscriber.waitClosed());
  t.deepEqual(await answers, [{ command: 'hold', data: 'released' }, ...pongs]);
  t.deepEqual(await messages, published);
  await closed;
  t.is(server.state, 'closed');
  t.is(server.connections.count, 0);
});

test('ws: the same, and each WebSocket is closed with 1001 (going away) after its last message', async (t) => {
  const hold = new Hold();
  const { server } = await startTestServer(t, { listeners: ['ws://127.0.0.1:0'] }, [hold.plugin]);
  const endpoint = websocketUrl(server.url('ws'));
  const subscriber = await WsClient.connect(t, endpoint);
  await subscriber.request({ command: 'subscribe', tags: TAGS });
  const client = await WsClient.connect(t, endpoint);
  // One write, as over TCP: what the server has not read when it closes is never answered.
  client.sendTogether(heldBatch());
  await hold.whenStarted();
  const closed = server.close();
  hold.release();
  const answers = readToClose(() => client.next(), 1 + N, () => client.waitClosed());
  const messages = readToClose(async () => withoutId(await subscriber.next()), N, () => subscriber.waitClosed());
  t.deepEqual(await answers, [{ command: 'hold', data: 'released' }, ...pongs]);
  t.deepEqual(await messages, published);
  t.is(client.closeCode, 1001);
  t.is(subscriber.closeCode, 1001);
  await closed;
});

test('http: an SSE stream gets what was published before it ends, and a publish under way is finished', async (t) => {
  const hold = new Hold();
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'] }, [hold.plugin]);
  const http = server.url('http');
  const stream = await SseClient.connect(t, http, `?tags=${TAGS.join(',')}`);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write(heldBatch().map((message) => JSON.stringify(message) + '\n').join(''));
  await hold.whenStarted();
  // A POST /publish whose body is still coming when the shutdown begins.
  const { hostname, port } = new URL(http);
  const post = connect(Number(port), hostname);
  t.teardown(() => post.destroy());
  let response = '';
  post.setEncoding('utf8').on('data', (text: string) => (response += text));
  const body = JSON.stringify({ tags: ['other'], data: 'late' });
  // Expect: 100-continue, so that the server says when the request has reached it.
  post.write(`POST /publish HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
  await new Promise((resolve) => post.once('data', resolve));
  t.regex(response, /^HTTP\/1\.1 100 Continue/);
  const closed = server.close();
  hold.release();
  post.end(body);
  for (const message of published) t.deepEqual(withoutId(await stream.next()), { event: 'publish', ...message });
  await stream.waitClosed();
  await closed;
  t.regex(response, /HTTP\/1\.1 204 /);
});

test('tls: a connection is answered and ended; one still in its TLS handshake does not hold up the drain', async (t) => {
  const { server, logs } = await startTestServer(t, { listeners: ['tls://127.0.0.1:0'], limits: { shutdownTimeoutMs: 20_000 } });
  const { hostname, port } = new URL(server.url('tls'));
  const handshaking = connect(Number(port), hostname);
  t.teardown(() => handshaking.destroy());
  handshaking.on('error', () => {});
  await new Promise((resolve) => handshaking.once('connect', resolve));
  const client = tlsConnect({ host: hostname, port: Number(port), rejectUnauthorized: false });
  t.teardown(() => client.destroy());
  await new Promise((resolve) => client.once('secureConnect', resolve));
  let received = '';
  client.setEncoding('utf8').on('data', (text: string) => (received += text));
  const ended = new Promise((resolve) => client.once('end', resolve));
  client.write('{"command":"ping"}\n'.repeat(3));
  await eventually(() => received.length > 0);
  await server.close();
  await ended;
  t.is(received, `${JSON.stringify(pongs[0])}\n`.repeat(3));
  t.false(logs.some((line) => String(line.msg).startsWith('shutdown timeout')), 'the drain was not cut short');
});

test('publishes read before the shutdown reach the cluster before the node leaves it', async (t) => {
  // A backplane that records what it is given, and when it is closed.
  const events: string[] = [];
  const tap = definePlugin({
    name: 'tap',
    register: (api) =>
      api.backplanes.register('tap', (_url, context) => {
        queueMicrotask(() => context.connected());
        return {
          publish: (channel, payload) => (events.push(`${channel} ${decodeEnvelope(payload)?.data ?? ''}`), true),
          close: async () => void events.push('closed'),
        };
      }),
  });
  const hold = new Hold();
  // interest=off: every publish is forwarded, whether or not another node wants it.
  const { server } = await startTestServer(t, { cluster: 'tap://test?interest=off' }, [hold.plugin, tap]);
  await eventually(() => server.cluster!.state === 'up');
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write(heldBatch().map((message) => JSON.stringify(message) + '\n').join(''));
  await hold.whenStarted();
  const closed = server.close();
  hold.release();
  await closed;
  const forwarded = events.filter((event) => event.startsWith('mist.msg '));
  t.deepEqual(forwarded, published.map((message) => `mist.msg "${message.data}"`));
  t.is(events.at(-1), 'closed');
  t.true(events.indexOf('closed') > events.lastIndexOf(forwarded.at(-1)!));
});

test('what is still open after shutdownTimeoutMs is destroyed, and the server closes', async (t) => {
  const hold = new Hold();
  const { server, logs } = await startTestServer(t, { limits: { shutdownTimeoutMs: 100 } }, [hold.plugin]);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.send({ command: 'hold' });
  await hold.whenStarted();
  // The hold never ends: its connection cannot be drained.
  await server.close();
  await client.waitClosed();
  t.is(server.connections.count, 0);
  t.true(logs.some((line) => line.level === 'warn' && line.msg === 'shutdown timeout: the connections still open are destroyed'));
  hold.release();
});

test('a client that reads none of its replies does not hold up the others: they are answered and closed without waiting for shutdownTimeoutMs', async (t) => {
  const limit = 16 * 1024;
  const { server, logs } = await startTestServer(t, { limits: { maxBufferedBytes: limit, shutdownTimeoutMs: 20_000 } });
  // The output of each connection, to see the replies pile up.
  const sinks: Sink[] = [];
  const open = server.connections.open.bind(server.connections);
  server.connections.open = (sink, info, identity) => (sinks.push(sink), open(sink, info, identity));
  const url = server.url('tcp');
  const idle = await LineClient.connect(t, url);
  const other = await LineClient.connect(t, url);
  // Subscriptions whose `list` reply is about 10 kB: 2000 lists ask for 20 MB of replies, more than a client reading nothing takes.
  for (let i = 0; i < 10; i++) {
    const tags = Array.from({ length: 8 }, (_, j) => `${i}-${j}-${'x'.repeat(100)}`);
    await idle.request({ command: 'subscribe', tags });
  }
  idle.socket.pause();
  idle.write('{"command":"list"}\n'.repeat(2000));
  await eventually(() => sinks[0]!.bufferedBytes > limit, 10_000, 'replies piled up');
  await other.sync();
  await server.close();
  await other.waitClosed();
  t.false(logs.some((line) => String(line.msg).startsWith('shutdown timeout')), 'the drain was not cut short');
});

test('close() is idempotent, and a server closed while draining only drains once', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  await client.sync();
  const first = server.close();
  t.is(server.close(), first);
  await first;
  await client.waitClosed();
  await server.close();
});

test('mist --server answers what it read, closes its connections and exits 0 on SIGTERM', async (t) => {
  const cli = MistCli.start(t, ['--server', '--listeners', 'tcp://127.0.0.1:0'], { spawn: true });
  await cli.waitFor('stdout', /"msg":"mist is ready"/);
  const url = /listening on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(cli.stdout)![1]!;
  const subscriber = await LineClient.connect(t, url);
  await subscriber.request({ command: 'subscribe', tags: TAGS });
  const client = await LineClient.connect(t, url);
  let ended = false;
  client.socket.once('end', () => (ended = true));
  // More than the server reads at once: SIGTERM comes while it is still reading.
  const pairs = 20_000;
  let batch = '';
  for (let i = 0; i < pairs; i++) batch += `{"command":"publish","tags":["drain"],"data":"${i}"}\n{"command":"ping"}\n`;
  client.write(batch);
  t.deepEqual(await client.next(), pongs[0]);
  cli.stop('SIGTERM');
  t.deepEqual(await cli.exit(), { code: 0, signal: null });
  // Every publish it read reached the subscriber, in order, and every ping it read was answered: ping i follows publish i.
  let answered = 1;
  while (await client.next().then(() => true, () => false)) answered++;
  const received: string[] = [];
  while (await subscriber.next().then((message) => received.push(message.data as string), () => false));
  t.deepEqual(received, Array.from({ length: received.length }, (_, i) => String(i)));
  t.true(received.length === answered || received.length === answered + 1, `${received.length} messages, ${answered} pongs`);
  t.true(client.closed && subscriber.closed);
  t.true(ended, 'the server ended the connection, rather than reset it with what it had not read');
  t.regex(cli.stdout, /"msg":"closed"/);
});
