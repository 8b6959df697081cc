/**
 * The client library against a real server over real sockets: over TCP,
 * and over WebSocket to the server's ws listener.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { backoffOptions } from '../client/backoff.ts';
import { backoffDelay } from '../core/backoff.ts';
import {
  ClientErrorCodes,
  connect,
  dataText,
  MistClient,
  MistClientError,
  MistReplyError,
  type ConnectOptions,
  type Delivery,
  type MistClientEvents,
} from '../client/index.ts';
import type { MistServer } from '../host/server.ts';
import { tempFolder } from './helpers/files.ts';
import { inRepo, REPO, source } from './helpers/paths.ts';
import { certificateFiles } from './helpers/web.ts';
import { LineClient, startTestServer } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

type Transport = 'tcp' | 'ws';

const FAST_RECONNECT: ConnectOptions = { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } };

/** Listens for TCP and WebSocket clients on free ports. */
const BOTH = { listeners: ['tcp://127.0.0.1:0', 'ws://127.0.0.1:0'] };

/** A server, and the URL a client of `transport` connects to; `restart()` replaces the server on the same ports. */
async function scene(t: ExecutionContext, transport: Transport) {
  let { server } = await startTestServer(t, BOTH);
  const url = server.url(transport);
  return {
    url,
    get server(): MistServer {
      return server;
    },
    async restart(): Promise<void> {
      const listeners = server.urls;
      await server.close();
      ({ server } = await startTestServer(t, { listeners }));
    },
  };
}

/** A connected client, closed at teardown. */
async function client(t: ExecutionContext, url: string, options: ConnectOptions = {}): Promise<MistClient> {
  const c = await connect(url, options);
  t.teardown(() => c.close());
  return c;
}

/** The next `event` of `client`, failing after `ms`. */
async function next<E extends keyof MistClientEvents>(client: MistClient, event: E, ms = WAIT_MS): Promise<MistClientEvents[E]> {
  return (await once(client as never, event, { signal: AbortSignal.timeout(ms) })) as MistClientEvents[E];
}

async function rejection(t: ExecutionContext, promise: Promise<unknown>): Promise<MistClientError> {
  const err = await t.throwsAsync(promise);
  t.true(err instanceof MistClientError, String(err));
  return err as MistClientError;
}

const TRANSPORTS: Transport[] = ['tcp', 'ws'];

for (const transport of TRANSPORTS) {
  test(`${transport}: ping, subscribe, list and unsubscribe resolve with the server's answers`, async (t) => {
    const { url } = await scene(t, transport);
    const c = await client(t, url);
    t.is(c.state, 'open');
    await c.ping();
    await c.subscribe(['b', 'a']);
    await c.subscribe(['c']);
    await c.subscribe(['a', 'b']);
    t.deepEqual(await c.list(), [['a', 'b'], ['c']]);
    t.deepEqual(c.subscribed, [['a', 'b'], ['c']]);
    await c.unsubscribe(['a', 'b']);
    t.deepEqual(await c.list(), [['c']]);
    t.deepEqual(c.subscribed, [['c']]);
  });

  test(`${transport}: a publish reaches a subscriber as an event and through the async iterator`, async (t) => {
    const { url } = await scene(t, transport);
    const subscriber = await client(t, url);
    const publisher = await client(t, url);
    await subscriber.subscribe(['onefish']);
    const events: Delivery[] = [];
    subscriber.on('message', (message) => events.push(message));
    const iterator = subscriber.messages();
    await publisher.publish(['onefish', 'twofish'], 'hello');
    await publisher.publish(['redfish'], 'not for you');
    await publisher.publish(['onefish'], { n: 1 });
    const first = await iterator.next();
    const id = first.value?.id;
    t.regex(id!, /^[0-9a-z]+-[0-9a-z]+$/);
    t.deepEqual(first.value, {
      tags: ['onefish', 'twofish'],
      data: 'hello',
      json: `{"command":"publish","tags":["onefish","twofish"],"data":"hello","id":"${id}"}`,
      id,
    });
    t.deepEqual((await iterator.next()).value?.data, { n: 1 });
    await subscriber.ping();
    t.deepEqual(
      events.map((message) => message.data),
      ['hello', { n: 1 }],
    );
    await iterator.return!();
  });

  test(`${transport}: errors surface as rejections carrying the server's reply, and the client stays usable`, async (t) => {
    const { url } = await scene(t, transport);
    const c = await client(t, url);
    const refused = await rejection(t, c.subscribe([]));
    t.true(refused instanceof MistReplyError);
    t.is(refused.code, ClientErrorCodes.REPLY);
    t.is(refused.message, '"subscribe" needs at least one tag');
    t.deepEqual((refused as MistReplyError).reply, { command: 'subscribe', error: '"subscribe" needs at least one tag' });
    const unknown = await rejection(t, c.request({ command: 'frobnicate' }));
    t.is(unknown.message, 'Unknown Command');
    t.is((unknown as MistReplyError).command, 'frobnicate');
    t.is((await rejection(t, c.publish([], 'x'))).message, '"publish" needs at least one tag');
    t.deepEqual(c.subscribed, []);
    await c.ping();
  });

  test(`${transport}: of pipelined publishes only the refused one rejects`, async (t) => {
    const { url } = await scene(t, transport);
    const subscriber = await client(t, url);
    const publisher = await client(t, url);
    await subscriber.subscribe(['a']);
    const iterator = subscriber.messages();
    const results = await Promise.allSettled([
      publisher.publish(['a'], 1),
      publisher.publish(['a', ''], 2),
      publisher.publish(['a'], 3),
      publisher.ping(),
      publisher.publish(['a'], 4),
    ]);
    t.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
    );
    t.is(((results[1] as PromiseRejectedResult).reason as Error).message, 'a tag must not be empty');
    const received = [];
    for (let i = 0; i < 3; i++) received.push((await iterator.next()).value?.data);
    t.deepEqual(received, [1, 3, 4]);
  });

  test(`${transport}: reconnect across a server restart restores every subscription`, async (t) => {
    const s = await scene(t, transport);
    const subscriber = await client(t, s.url, FAST_RECONNECT);
    await subscriber.subscribe(['a']);
    await subscriber.subscribe(['b', 'c']);
    await subscriber.subscribe(['d']);
    await subscriber.unsubscribe(['d']);
    const disconnected = next(subscriber, 'disconnect');
    const reconnected = next(subscriber, 'reconnect');
    await s.restart();
    const [lost] = await disconnected;
    t.is(lost.code, ClientErrorCodes.CONNECTION);
    t.regex(lost.message, /lost/);
    const [{ attempts }] = await reconnected;
    t.true(attempts >= 1);
    t.is(subscriber.state, 'open');
    t.deepEqual(await subscriber.list(), [['a'], ['b', 'c']]);

    const iterator = subscriber.messages();
    const publisher = await client(t, s.url);
    await publisher.publish(['d'], 'unsubscribed before the restart');
    await publisher.publish(['c', 'b'], 'bc');
    await publisher.publish(['a', 'x'], 'a');
    t.is((await iterator.next()).value?.data, 'bc');
    t.is((await iterator.next()).value?.data, 'a');
  });
}

for (const transport of TRANSPORTS) {
  test(`${transport}: after a lost connection the client resumes: what was published meanwhile comes once, in order, then live ones`, async (t) => {
    const { server, url } = await scene(t, transport);
    const subscriber = await client(t, url, FAST_RECONNECT);
    await subscriber.subscribe(['news']);
    await subscriber.subscribe(['other']);
    const received: unknown[] = [];
    subscriber.on('message', (message) => received.push(message.data));
    const gaps: unknown[] = [];
    subscriber.on('gap', (gap) => gaps.push(gap));
    const publisher = await LineClient.connect(t, server.url('tcp'));
    const first = next(subscriber, 'message');
    publisher.send({ command: 'publish', tags: ['news'], data: 'before' });
    await first;
    const seen = subscriber.lastId;
    t.is(server.history.seqOf(seen!), 1);

    // The server drops the connection; what is published while the client is away, it gets on its return.
    subscriber.once('disconnect', () => {
      for (let n = 0; n < 50; n++) publisher.send({ command: 'publish', tags: ['news'], data: n });
    });
    const reconnected = next(subscriber, 'reconnect');
    for (const session of server.connections.list()) if (session.subscriptions.size > 0) session.abort();
    await reconnected;
    publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
    while (received.at(-1) !== 'live') await next(subscriber, 'message');
    t.deepEqual(received, ['before', ...Array.from({ length: 50 }, (_, n) => n), 'live']);
    t.deepEqual(gaps, []);
    t.is(server.history.seqOf(subscriber.lastId!), 52);
  });
}

test('a server restart is a gap: the client says so with the id it could not resume from', async (t) => {
  const s = await scene(t, 'tcp');
  const subscriber = await client(t, s.url, FAST_RECONNECT);
  await subscriber.subscribe(['a']);
  const publisher = await client(t, s.url);
  const received = next(subscriber, 'message');
  await publisher.publish(['a'], 'before');
  await received;
  const lastId = subscriber.lastId!;
  const gap = next(subscriber, 'gap');
  const reconnected = next(subscriber, 'reconnect');
  await s.restart();
  t.deepEqual(await gap, [{ lastId }]);
  await reconnected;
  t.is(subscriber.lastId, lastId, 'unchanged until a message comes');
});

test('resume() from an id kept by an earlier run: lastId given to connect', async (t) => {
  const { server, url } = await scene(t, 'tcp');
  const publisher = await client(t, url);
  const first = await client(t, url);
  await first.subscribe(['a']);
  const received = next(first, 'message');
  await publisher.publish(['a'], 'seen');
  await received;
  const kept = first.lastId!;
  await first.close();
  await publisher.publish(['a'], 'missed');
  const later = await client(t, url, { lastId: kept });
  t.is(later.lastId, kept);
  await later.subscribe(['a']);
  const messages = later.messages();
  t.is(await later.resume(), 'success');
  t.is((await messages.next()).value?.data, 'missed');
  t.is(server.history.seqOf(later.lastId!), 2);
  t.is(await later.resume('nonsense'), 'gap');
  await t.throwsAsync(new MistClient(url).resume(), { instanceOf: TypeError });
});

/** A TCP server that accepts and never answers; `drop()` destroys the connections it holds. */
async function silentServer(t: ExecutionContext) {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return {
    url: `tcp://127.0.0.1:${port}`,
    sockets,
    drop: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

test('requests waiting when the connection drops reject with a clear error; new ones reject until reconnected', async (t) => {
  const silent = await silentServer(t);
  const c = await client(t, silent.url, { reconnect: { initialDelayMs: 60_000 } });
  const waiting = c.list();
  const publishing = c.publish(['a'], 'x');
  const disconnected = next(c, 'disconnect');
  await new Promise((resolve) => setTimeout(resolve, 50));
  silent.drop();
  for (const promise of [waiting, publishing]) {
    const err = await rejection(t, promise);
    t.is(err.code, ClientErrorCodes.CONNECTION);
    t.regex(err.message, /^connection to tcp:\/\/127\.0\.0\.1:\d+ lost/);
  }
  await disconnected;
  t.is(c.state, 'reconnecting');
  const refused = await rejection(t, c.ping());
  t.is(refused.code, ClientErrorCodes.NOT_CONNECTED);
  t.regex(refused.message, /reconnecting/);
});

test('a refused connection rejects connect() naming the URL', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  await server.close();
  const err = await rejection(t, connect(url));
  t.is(err.code, ClientErrorCodes.CONNECTION);
  t.is(err.message, `cannot connect to ${url}: connection refused`);
});

test('an unknown URL scheme rejects connect()', async (t) => {
  const err = await rejection(t, connect('http://127.0.0.1:1'));
  t.is(err.code, ClientErrorCodes.URL);
  t.regex(err.message, /"http".*known: tcp, tls, ws, wss/);
});

test('with reconnect off, a lost connection closes the client', async (t) => {
  const { server } = await startTestServer(t);
  const c = await client(t, server.url('tcp'), { reconnect: false });
  const closed = next(c, 'close');
  await server.close();
  await closed;
  t.is(c.state, 'closed');
  t.is((await rejection(t, c.ping())).code, ClientErrorCodes.NOT_CONNECTED);
});

test('after maxAttempts failed reconnects the client gives up and closes; each attempt says why', async (t) => {
  const { server } = await startTestServer(t);
  const c = await client(t, server.url('tcp'), { reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 } });
  const attempts: number[] = [];
  const reasons: string[] = [];
  c.on('reconnecting', ({ attempt, error }) => {
    attempts.push(attempt);
    reasons.push(error.message);
  });
  const closed = next(c, 'close');
  await server.close();
  await closed;
  t.deepEqual(attempts, [1, 2, 3]);
  t.regex(reasons[0]!, /^connection to tcp:\/\/127\.0\.0\.1:\d+ lost/);
  t.true(reasons.slice(1).every((reason) => reason.endsWith('connection refused')), reasons.join('\n'));
  t.is(c.state, 'closed');
});

test('a request with no reply rejects after requestTimeoutMs, and its late reply is not given to the next one', async (t) => {
  const silent = await silentServer(t);
  const c = await client(t, silent.url, { requestTimeoutMs: 100 });
  const err = await rejection(t, c.list());
  t.is(err.code, ClientErrorCodes.TIMEOUT);
  t.is(err.message, 'no reply to "list" within 100 ms');
  const second = c.list();
  const [socket] = silent.sockets;
  socket!.write('{"command":"list","data":"[[\\"late\\"]]"}\n{"command":"list","data":"[[\\"mine\\"]]"}\n');
  t.deepEqual(await second, [['mine']]);
});

test('close() rejects waiting requests, ends message iterators, and is idempotent', async (t) => {
  const silent = await silentServer(t);
  const c = await connect(silent.url);
  const iterator = c.messages();
  const reading = iterator.next();
  const waiting = c.ping();
  const closed = next(c, 'close');
  await Promise.all([c.close(), c.close()]);
  await closed;
  t.deepEqual(await reading, { value: undefined, done: true });
  t.is((await rejection(t, waiting)).code, ClientErrorCodes.NOT_CONNECTED);
  t.deepEqual(await c.messages().next(), { value: undefined, done: true });
  await c.close();
});

test('data keeps its digits in the JSON text: dataText() reads it as published', async (t) => {
  const { server } = await startTestServer(t);
  const subscriber = await client(t, server.url('tcp'));
  await subscriber.subscribe(['n']);
  const raw = await LineClient.connect(t, server.url('tcp'));
  raw.send({ command: 'ping' });
  raw.write('{"command":"publish","tags":["n"],"data":12345678901234567890}\n');
  const { value } = await subscriber.messages().next();
  t.is(dataText(value!), '12345678901234567890');
});

const ADMIN = 'admin-secret';
const WITH_AUTH = { authenticator: 'memory://', token: ADMIN };

test('with an authenticator, connect() with the admin token may subscribe; a wrong token rejects connect()', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const admin = await client(t, server.url('tcp'), { token: ADMIN });
  await admin.subscribe(['a']);
  t.deepEqual(await admin.list(), [['a']]);
  const err = await rejection(t, connect(server.url('tcp'), { token: 'wrong' }));
  t.true(err instanceof MistReplyError);
  t.is(err.message, 'invalid token');
  t.is((err as MistReplyError).command, 'auth');
});

test('without a token only ping works until auth(); then the token is used', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const c = await client(t, server.url('tcp'));
  await c.ping();
  t.is((await rejection(t, c.subscribe(['a']))).message, 'not authenticated: send auth first');
  t.is((await rejection(t, c.auth('wrong'))).message, 'invalid token');
  await c.auth(ADMIN);
  await c.subscribe(['a']);
  t.deepEqual(await c.list(), [['a']]);
});

test('after a restart the client authenticates again before restoring its subscriptions', async (t) => {
  const first = await startTestServer(t, WITH_AUTH);
  const url = first.server.url('tcp');
  const subscriber = await client(t, url, { ...FAST_RECONNECT });
  await subscriber.auth(ADMIN);
  await subscriber.subscribe(['a']);
  const reconnected = next(subscriber, 'reconnect');
  await first.server.close();
  await startTestServer(t, { ...WITH_AUTH, listeners: [url] });
  await reconnected;
  t.deepEqual(await subscriber.list(), [['a']]);
  const publisher = await client(t, url, { token: ADMIN });
  const iterator = subscriber.messages();
  await publisher.publish(['a'], 'restored');
  t.is((await iterator.next()).value?.data, 'restored');
});

test('admin calls manage tokens whose tags then bound what a user may do', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const url = server.url('tcp');
  const admin = await client(t, url, { token: ADMIN });
  await admin.register('user-1', ['a', 'b']);
  t.deepEqual(await admin.tags('user-1'), ['a', 'b']);
  const exists = await rejection(t, admin.register('user-1', ['z']));
  t.is(exists.code, ClientErrorCodes.REPLY);
  t.is((exists as MistReplyError).command, 'register');
  await admin.set('user-1', ['c']);
  await admin.unset('user-1', ['a']);
  t.deepEqual(await admin.tags('user-1'), ['b', 'c']);

  const user = await client(t, url, { token: 'user-1' });
  await user.subscribe(['b', 'c']);
  t.regex((await rejection(t, user.subscribe(['a']))).message, /not permitted to use tags: a/);
  t.regex((await rejection(t, user.register('user-2', ['a']))).message, /.+/);
  await admin.subscribe(['x']);
  t.deepEqual(await admin.listall(), [['b', 'c'], ['x']]);
  t.like(await admin.who(), { connections: 2, subscriptions: 2 });

  await admin.unregister('user-1');
  const gone = await rejection(t, connect(url, { token: 'user-1' }));
  t.is(gone.message, 'invalid token');
});

/**
 * A TCP server that answers each request with `answer(request)` and
 * records the requests: for checking what the client writes.
 */
async function scriptedServer(t: ExecutionContext, answer: (request: Record<string, unknown>) => object | undefined) {
  const requests: Array<Record<string, unknown>> = [];
  const server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8').on('data', (text: string) => {
      buffer += text;
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        const request = JSON.parse(buffer.slice(0, at)) as Record<string, unknown>;
        buffer = buffer.slice(at + 1);
        requests.push(request);
        const reply = answer(request);
        if (reply) socket.write(JSON.stringify(reply) + '\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `tcp://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}

test('admin calls send the admin requests of the protocol and decode their replies', async (t) => {
  const who = { connections: 2, total: 5, subscriptions: 1 };
  const { url, requests } = await scriptedServer(t, ({ command }) => {
    switch (command) {
      case 'tags':
        return { command, tags: ['a', 'b'] };
      case 'who':
        return { command, data: JSON.stringify(who) };
      case 'listall':
        return { command, data: '[["a"],["b","c"]]' };
      default:
        return { command, data: 'success' };
    }
  });
  const admin = await client(t, url, { token: ADMIN });
  await admin.register('user-1', ['a', 'b']);
  await admin.set('user-1', ['c']);
  await admin.unset('user-1', ['a']);
  t.deepEqual(await admin.tags('user-1'), ['a', 'b']);
  t.deepEqual(await admin.who(), who);
  t.deepEqual(await admin.listall(), [['a'], ['b', 'c']]);
  await admin.unregister('user-1');
  t.deepEqual(requests, [
    { command: 'auth', data: ADMIN },
    { command: 'register', tags: ['a', 'b'], data: 'user-1' },
    { command: 'set', tags: ['c'], data: 'user-1' },
    { command: 'unset', tags: ['a'], data: 'user-1' },
    { command: 'tags', data: 'user-1' },
    { command: 'who' },
    { command: 'listall' },
    { command: 'unregister', data: 'user-1' },
  ]);
});

test('ws: a wrong token is refused with 401 before the upgrade; the right one, in the header, authenticates', async (t) => {
  const { server } = await startTestServer(t, { ...WITH_AUTH, ...BOTH });
  const url = server.url('ws');
  const err = await rejection(t, connect(url, { token: 'wrong' }));
  t.is(err.code, ClientErrorCodes.UNAUTHORIZED);
  t.is(err.message, `${url}/subscribe/websocket refused the token (HTTP 401)`);
  const admin = await client(t, url, { token: ADMIN });
  await admin.subscribe(['a']);
  t.deepEqual(await admin.list(), [['a']]);
});

test('ws: without a token the connection opens unauthenticated, and auth() lets it in', async (t) => {
  const { server } = await startTestServer(t, { ...WITH_AUTH, ...BOTH });
  const c = await client(t, server.url('ws'));
  t.is((await rejection(t, c.subscribe(['a']))).message, 'not authenticated: send auth first');
  await c.auth(ADMIN);
  await c.subscribe(['a']);
});

test('ws: a URL with a path uses it, here the http listener\'s WebSocket endpoint', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['http://127.0.0.1:0'] });
  const port = new URL(server.url('http')).port;
  const c = await client(t, `ws://127.0.0.1:${port}/subscribe/websocket`);
  await c.ping();
  const err = await rejection(t, connect(`ws://127.0.0.1:${port}/elsewhere`));
  t.is(err.code, ClientErrorCodes.CONNECTION);
  t.regex(err.message, /HTTP 404/);
});

for (const scheme of ['tls', 'wss']) {
  test(`${scheme}://: the client verifies the server's certificate against the given CA and works over TLS`, async (t) => {
    const files = await certificateFiles(t);
    const { server } = await startTestServer(t, { listeners: [`${scheme}://127.0.0.1:0`], tls: { cert: files.cert, key: files.key } });
    const url = server.url(scheme);
    const untrusted = await rejection(t, connect(url));
    t.is(untrusted.code, ClientErrorCodes.CONNECTION);
    t.regex(untrusted.message, /self[- ]signed/i);
    const subscriber = await client(t, url, { tls: { ca: files.pem } });
    const publisher = await client(t, url, { tls: { ca: files.pem } });
    await subscriber.subscribe(['a']);
    const messages = subscriber.messages();
    await publisher.publish(['a'], 'encrypted');
    t.is((await messages.next()).value?.data, 'encrypted');
  });
}

test('backoff grows by the factor up to the cap, less up to `jitter` of itself', (t) => {
  const backoff = backoffOptions({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 });
  t.deepEqual(
    [0, 1, 2, 3, 4, 10].map((attempt) => backoffDelay(backoff, attempt, () => 0)),
    [100, 200, 400, 800, 1000, 1000],
  );
  t.deepEqual(
    [0, 1, 4].map((attempt) => backoffDelay(backoff, attempt, () => 1)),
    [50, 100, 500],
  );
  t.is(backoffOptions().maxAttempts, Infinity);
});

const CLIENT = source('client/index.ts');

/** Runs a script that uses the client in a child process (importing `connect` unless it has imports of its own); resolves with its output and how long it took to exit after printing "closed". */
async function runScript(
  t: ExecutionContext,
  body: string,
  onOutput: (stdout: string) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string; lingerMs: number }> {
  const dir = await tempFolder(t, { 'script.mts': body.includes('import ') ? body : `import { connect } from '${CLIENT}';\n${body}\n` });
  const child = spawn(process.execPath, ['--import=tsx', join(dir, 'script.mts')], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  let closedAt = 0;
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    if (!closedAt && stdout.includes('closed')) closedAt = Date.now();
    onOutput(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(40_000) })) as [number | null];
  return { code, stdout, stderr, lingerMs: closedAt ? Date.now() - closedAt : Infinity };
}

test('close() leaves nothing running: a process that subscribed, received and closed exits at once', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const { code, stdout, stderr, lingerMs } = await runScript(
    t,
    [
      `const a = await connect('${url}', { requestTimeoutMs: 60_000 });`,
      `const b = await connect('${url}');`,
      "await a.subscribe(['x']);",
      "const received = a.messages().next();",
      "await b.publish(['x'], 'hi');",
      'console.log((await received).value.data);',
      'await a.close(); await b.close();',
      "console.log('closed');",
    ].join('\n'),
  );
  t.is(code, 0, stderr);
  t.is(stdout, 'hi\nclosed\n');
  t.true(lingerMs < 1500, `exited ${lingerMs} ms after closing`);
});

test('close() while reconnecting leaves nothing running either', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const script = runScript(
    t,
    [
      `const c = await connect('${url}', { reconnect: { initialDelayMs: 50, maxDelayMs: 60_000 } });`,
      "await c.subscribe(['x']);",
      "console.log('ready');",
      "await new Promise((resolve) => c.once('reconnecting', resolve));",
      "await new Promise((resolve) => c.once('reconnecting', resolve));",
      'await c.close();',
      "console.log('closed');",
    ].join('\n'),
    (stdout) => {
      if (stdout.includes('ready')) ready();
    },
  );
  // Stop the server once the script has subscribed; the script then retries until it closes.
  await Promise.race([isReady, script]);
  await server.close();
  const { code, stdout, stderr, lingerMs } = await script;
  t.is(code, 0, stderr);
  t.is(stdout, 'ready\nclosed\n');
  t.true(lingerMs < 1500, `exited ${lingerMs} ms after closing`);
});

test('the runnable example of docs/client.md runs as documented and exits by itself', async (t) => {
  const doc = await readFile(inRepo('docs/client.md'), 'utf8');
  const example = /## A runnable example[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  t.truthy(example, 'docs/client.md has the example');
  const { server } = await startTestServer(t);
  const source = example!
    .replace(`from 'mist/client'`, `from '${CLIENT}'`)
    .replace(`process.env.MIST_URL ?? 'tcp://127.0.0.1:1445'`, `'${server.url('tcp')}'`);
  const { code, stdout, stderr } = await runScript(t, source + "\nconsole.log('closed');\n");
  t.is(code, 0, stderr);
  t.is(stdout, "[ [ 'deploy' ] ]\n[ 'deploy', 'app-42' ] v1.2.3 is live\nclosed\n");
});
