/**
 * The http:// listener over real sockets: every route, auth on
 * each, bad input on each.
 */
import { connect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { Gauge } from 'prom-client';
import { CommandError } from '../core/errors.ts';
import type { RefusalKind } from '../core/result.ts';
import type { ConfigFile } from '../host/config-schema.ts';
import { eventually, LineClient, startTestServer, lineWithoutId, withoutId } from './helpers/server.ts';
import { fetchText, flood, postPublish, SseClient, websocketUrl, WsClient } from './helpers/web.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

const ADMIN = 'admin-secret';

async function httpServer(t: ExecutionContext, config: ConfigFile = {}, query = '') {
  const { server, logs } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', `http://127.0.0.1:0${query}`], ...config });
  return { server, logs, url: server.url('http') };
}

/** A server with an authenticator, and a token `user-token` that may use tag `a` only. */
async function authServer(t: ExecutionContext, query = '') {
  const result = await httpServer(t, { authenticator: 'memory://', token: ADMIN }, query);
  await result.server.auth.register('user-token', ['a']);
  return result;
}

/** A TCP client subscribed to `tags`. */
async function tcpSubscriber(t: ExecutionContext, url: string, tags: string[]): Promise<LineClient> {
  const client = await LineClient.connect(t, url);
  t.deepEqual(await client.request({ command: 'subscribe', tags }), { command: 'subscribe', tags, data: 'success' });
  return client;
}

function errorOf(reply: { body: string }): string {
  return (JSON.parse(reply.body) as { error: string }).error;
}

// --- simple routes

test('GET /ping answers pong', async (t) => {
  const { url } = await httpServer(t);
  const reply = await fetchText(`${url}/ping`);
  t.is(reply.status, 200);
  t.is(reply.body, 'pong');
  t.regex(String(reply.headers['content-type']), /^text\/plain/);
});

test('GET /healthz answers ok as JSON', async (t) => {
  const { url } = await httpServer(t);
  const reply = await fetchText(`${url}/healthz`);
  t.is(reply.status, 200);
  t.deepEqual(JSON.parse(reply.body), { status: 'ok' });
});

test('an unknown path is 404 with a JSON error', async (t) => {
  const { url } = await httpServer(t);
  const reply = await fetchText(`${url}/nowhere`);
  t.is(reply.status, 404);
  t.is(errorOf(reply), 'not found: /nowhere');
  for (const path of ['/', '/__proto__', '/constructor', '/ping/', '/PING']) t.is((await fetchText(`${url}${path}`)).status, 404, path);
});

test('a wrong method is 405 with Allow and a JSON error', async (t) => {
  const { url } = await httpServer(t);
  const get = await fetchText(`${url}/publish`);
  t.is(get.status, 405);
  t.is(get.headers.allow, 'POST, OPTIONS');
  t.regex(errorOf(get), /GET is not allowed on \/publish/);
  const post = await fetchText(`${url}/ping`, { method: 'POST', body: 'x' });
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
  t.is((await fetchText(`${url}/subscribe/events?tags=a`, { method: 'DELETE' })).status, 405);
});

test('a plain GET of /subscribe/websocket is 426', async (t) => {
  const { url } = await httpServer(t);
  t.is((await fetchText(`${url}/subscribe/websocket`)).status, 426);
});

test('GET /metrics serves the Prometheus text of this server', async (t) => {
  const { server, url } = await httpServer(t);
  const subscriber = await tcpSubscriber(t, server.url('tcp'), ['a']);
  const ws = await WsClient.connect(t, websocketUrl(url));
  await ws.request({ command: 'nope' });
  t.is((await postPublish(url, { tags: ['a'], data: 1 })).status, 204);
  await subscriber.next();
  const reply = await fetchText(`${url}/metrics`);
  t.is(reply.status, 200);
  t.regex(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const lines = reply.body.split('\n');
  for (const expected of [
    'mist_connections{transport="tcp"} 1',
    'mist_connections{transport="ws"} 1',
    'mist_connections{transport="http"} 0',
    'mist_subscriptions 1',
    'mist_messages_published_total 1',
    'mist_messages_delivered_total 1',
    'mist_messages_dropped_total 0',
    'mist_command_errors_total 1',
    'mist_connections_opened_total 3',
    '# TYPE mist_messages_published_total counter',
    '# TYPE mist_connections gauge',
  ]) {
    t.true(lines.includes(expected), `has ${expected}`);
  }
});

test('two servers in one process keep their metrics apart', async (t) => {
  const one = await httpServer(t);
  const two = await httpServer(t);
  await postPublish(one.url, { tags: ['a'] });
  t.true((await fetchText(`${one.url}/metrics`)).body.includes('mist_messages_published_total 1'));
  t.true((await fetchText(`${two.url}/metrics`)).body.includes('mist_messages_published_total 0'));
});

// --- POST /publish

test('POST /publish delivers to subscribers and answers 204', async (t) => {
  const { server, url } = await httpServer(t);
  const subscriber = await tcpSubscriber(t, server.url('tcp'), ['a']);
  const reply = await postPublish(url, { command: 'publish', tags: ['a', 'b'], data: 'hello' });
  t.is(reply.status, 204);
  t.is(reply.body, '');
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a', 'b'], data: 'hello' });
  await eventually(() => server.connections.count === 1);
});

test('POST /publish without "command" publishes, and forwards data exactly as written', async (t) => {
  const { server, url } = await httpServer(t);
  const subscriber = await tcpSubscriber(t, server.url('tcp'), ['a']);
  t.is((await postPublish(url, ' {"tags":["a"],"data":{"big":12345678901234567890}}')).status, 204);
  t.is(lineWithoutId(await subscriber.nextLine()), '{"command":"publish","tags":["a"],"data":{"big":12345678901234567890}}');
  t.is((await postPublish(url, '{"tags":["a"]}')).status, 204);
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a'] });
});

test('POST /publish with bad input answers 400 with a JSON error and delivers nothing', async (t) => {
  const { server, url } = await httpServer(t, { limits: { maxTags: 2 } });
  const subscriber = await tcpSubscriber(t, server.url('tcp'), ['a']);
  const cases: Array<[string, RegExp]> = [
    ['not json', /^invalid JSON/],
    ['', /^invalid JSON/],
    ['[1]', /^a message must be a JSON object$/],
    ['{}', /^"publish" needs at least one tag$/],
    ['{"tags":[]}', /^"publish" needs at least one tag$/],
    ['{"tags":"a"}', /^"tags" must be an array of strings$/],
    ['{"tags":["a",""]}', /^a tag must not be empty$/],
    ['{"tags":["a","b","c"]}', /^too many tags/],
    ['{"command":"subscribe","tags":["a"]}', /^POST \/publish takes publish messages only, not "subscribe"$/],
  ];
  for (const [body, error] of cases) {
    const reply = await postPublish(url, body);
    t.is(reply.status, 400, body);
    t.regex(errorOf(reply), error, body);
  }
  const binary = await postPublish(url, Buffer.from([0xff, 0x7b]) as unknown as string);
  t.is(binary.status, 400);
  t.is(errorOf(binary), 'invalid UTF-8');
  await subscriber.sync();
  t.is(subscriber.pending, 0);
});

test('POST /publish with a body over maxMessageBytes answers 413', async (t) => {
  const { url } = await httpServer(t, { limits: { maxMessageBytes: 1024 } });
  const body = JSON.stringify({ tags: ['a'], data: 'x'.repeat(2000) });
  const reply = await postPublish(url, body);
  t.is(reply.status, 413);
  t.is(errorOf(reply), 'message too long: over 1024 bytes');
  // Without a length announced, the body is counted as it comes.
  const chunked = await postPublish(url, body, { 'transfer-encoding': 'chunked' });
  t.is(chunked.status, 413);
  t.is((await postPublish(url, { tags: ['a'], data: 'fits' })).status, 204);
});

test('POST /publish with an authenticator: no token 401, wrong token 401, tags not permitted 403, permitted 204', async (t) => {
  const { server, url, logs } = await authServer(t);
  const watcher = await LineClient.connect(t, server.url('tcp'));
  await watcher.request({ command: 'auth', data: ADMIN });
  await watcher.request({ command: 'subscribe', tags: ['a'] });

  const none = await postPublish(url, { tags: ['a'], data: 1 });
  t.is(none.status, 401);
  t.regex(errorOf(none), /not authenticated/);
  const wrong = await postPublish(url, { tags: ['a'], data: 2 }, { 'x-auth-token': 'guess-1' });
  t.is(wrong.status, 401);
  t.is(errorOf(wrong), 'invalid token');
  const forbidden = await postPublish(url, { tags: ['a', 'b'], data: 3 }, { 'x-auth-token': 'user-token' });
  t.is(forbidden.status, 403);
  t.is(errorOf(forbidden), 'not permitted to use tags: b');
  const badInput = await postPublish(url, { tags: [], data: 4 }, { 'x-auth-token': 'user-token' });
  t.is(badInput.status, 400, 'bad input by a permitted token is still 400');

  t.is((await postPublish(url, { tags: ['a'], data: 5 }, { 'X-AUTH-TOKEN': 'user-token' })).status, 204);
  t.deepEqual(withoutId(await watcher.next()), { command: 'publish', tags: ['a'], data: 5 });
  t.is((await fetchText(`${url}/publish?x-auth-token=${ADMIN}`, { method: 'POST', body: '{"tags":["a","z"],"data":6}' })).status, 204);
  t.deepEqual(withoutId(await watcher.next()), { command: 'publish', tags: ['a', 'z'], data: 6 });
  await watcher.sync();
  t.is(watcher.pending, 0, 'refused publishes delivered nothing');
  t.false(JSON.stringify(logs).includes('guess-1'));
});

/** Each kind of refusal and the status HTTP answers it with; `failed` is a handler's fault, not a CommandError. */
const STATUSES: Array<[RefusalKind, number]> = [
  ['invalid', 400],
  ['unauthenticated', 401],
  ['forbidden', 403],
  ['unknown', 400],
  ['limit', 413],
  ['throttled', 429],
  ['unavailable', 503],
  ['failed', 500],
];

function refusalOf(kind: RefusalKind): Error {
  return kind === 'failed' ? new Error('a bug') : new CommandError(`refused: ${kind}`, kind);
}

test('POST /publish answers each kind of refusal from the dispatcher with its status and error text', async (t) => {
  const { server, url } = await httpServer(t);
  for (const [kind, status] of STATUSES) {
    server.broker.publish = () => {
      throw refusalOf(kind);
    };
    const reply = await postPublish(url, { tags: ['a'], data: kind });
    t.is(reply.status, status, kind);
    t.is(errorOf(reply), kind === 'failed' ? 'internal error' : `refused: ${kind}`, kind);
  }
  await eventually(() => server.connections.count === 0);
  t.pass();
});

test('OPTIONS /publish answers a browser preflight for the token header', async (t) => {
  const { url } = await httpServer(t);
  const reply = await fetchText(`${url}/publish`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173' } });
  t.is(reply.status, 204);
  t.is(reply.headers['access-control-allow-origin'], 'http://localhost:5173');
  t.regex(String(reply.headers['access-control-allow-headers']), /x-auth-token/);
});

// --- GET /subscribe/events

test('SSE: a subscriber receives each matching publish as an "event: publish" with the JSON message', async (t) => {
  const { server, url } = await httpServer(t);
  const stream = await SseClient.connect(t, url, '?tags=a,b');
  t.is(stream.response.headers['content-type'], 'text/event-stream; charset=utf-8');
  t.is(server.connections.byTransport().get('sse'), 1);
  t.is(server.broker.subscriptionCount, 1);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  publisher.send({ command: 'publish', tags: ['a'], data: 'not for it' });
  publisher.send({ command: 'publish', tags: ['a', 'b', 'c'], data: { n: 1 } });
  t.deepEqual(withoutId(await stream.next()), { event: 'publish', command: 'publish', tags: ['a', 'b', 'c'], data: { n: 1 } });
  await publisher.sync();
  t.is(stream.pending, 0);
});

test('SSE: repeated tags= parameters are several subscriptions, and a message matching both comes once', async (t) => {
  const { server, url } = await httpServer(t);
  const stream = await SseClient.connect(t, url, '?tags=a,c&tags=b,d');
  t.is(server.broker.subscriptionCount, 2);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  publisher.send({ command: 'publish', tags: ['a', 'b', 'c', 'd'], data: 1 });
  publisher.send({ command: 'publish', tags: ['b', 'd'], data: 2 });
  t.is((await stream.next()).data, 1);
  t.is((await stream.next()).data, 2);
  await publisher.sync();
  t.is(stream.pending, 0);
});

test('SSE: heartbeat comments come every ?heartbeat= milliseconds', async (t) => {
  const { url } = await httpServer(t, {}, '?heartbeat=50');
  const stream = await SseClient.connect(t, url, '?tags=a');
  await stream.waitFor(() => stream.comments.filter((c) => c === 'heartbeat').length >= 2, 'two heartbeats');
  t.pass();
});

test('SSE: closing the stream drops its session and subscriptions', async (t) => {
  const { server, url } = await httpServer(t);
  const stream = await SseClient.connect(t, url, '?tags=a');
  t.is(server.connections.count, 1);
  stream.close();
  await eventually(() => server.connections.count === 0 && server.broker.subscriptionCount === 0);
  t.pass();
});

test('SSE: closing the server ends the stream', async (t) => {
  const { server, url } = await httpServer(t);
  const stream = await SseClient.connect(t, url, '?tags=a');
  await server.close();
  t.is(server.connections.count, 0);
  await stream.waitClosed();
  t.pass();
});

test('SSE: bad input is 400 with a JSON error before any stream', async (t) => {
  const { server, url } = await httpServer(t, { limits: { maxTags: 2, maxTagBytes: 8 } });
  for (const query of ['', '?tags=', '?tags=a,,b', '?other=a', '?tags=a,b,c', '?tags=waytoolongtag']) {
    const error = await t.throwsAsync(SseClient.connect(t, url, query));
    t.is((error as Error & { status?: number }).status, 400, query);
    t.truthy(JSON.parse((error as Error & { body: string }).body).error, query);
  }
  await eventually(() => server.connections.count === 0);
  t.is(server.broker.subscriptionCount, 0);
});

test('SSE answers each kind of refusal of a subscription with its status and error text, and holds no subscription', async (t) => {
  const { server, url } = await httpServer(t);
  const subscribe = server.broker.subscribe.bind(server.broker);
  for (const [kind, status] of STATUSES) {
    // The first subscription is made, the second refused: the stream must not keep the first.
    server.broker.subscribe = (session, tags) => {
      if (tags.includes('b')) throw refusalOf(kind);
      subscribe(session, tags);
    };
    const error = (await t.throwsAsync(SseClient.connect(t, url, '?tags=a&tags=b'))) as Error & { status?: number; body: string };
    t.is(error.status, status, kind);
    t.is(JSON.parse(error.body).error, kind === 'failed' ? 'internal error' : `refused: ${kind}`, kind);
  }
  await eventually(() => server.connections.count === 0);
  t.is(server.broker.subscriptionCount, 0);
});

test('SSE: what is delivered while the subscriptions are being made comes first, in order, once the stream starts', async (t) => {
  const { server, url } = await httpServer(t);
  const subscribe = server.broker.subscribe.bind(server.broker);
  server.broker.subscribe = (session, tags) => {
    subscribe(session, tags);
    // Before the headers are written: the sink must hold these back.
    server.broker.publish(undefined, tags, JSON.stringify(`early ${tags.join()}`));
  };
  const stream = await SseClient.connect(t, url, '?tags=a&tags=b');
  const publisher = await LineClient.connect(t, server.url('tcp'));
  publisher.send({ command: 'publish', tags: ['a'], data: 'later' });
  t.is((await stream.next()).data, 'early a');
  t.is((await stream.next()).data, 'early b');
  t.is((await stream.next()).data, 'later');
});

test('SSE with an authenticator: no token 401, wrong token 401, tags not permitted 403, permitted streams', async (t) => {
  const { server, url } = await authServer(t);
  const status = async (query: string, headers: Record<string, string> = {}) => {
    const error = await t.throwsAsync(SseClient.connect(t, url, query, headers));
    return (error as Error & { status?: number }).status;
  };
  t.is(await status('?tags=a'), 401);
  t.is(await status('?tags=a&x-auth-token=guess'), 401);
  t.is(await status('?tags=a', { 'x-auth-token': 'guess' }), 401);
  t.is(await status('?tags=a&tags=b&x-auth-token=user-token'), 403);
  await eventually(() => server.connections.count === 0);
  t.is(server.broker.subscriptionCount, 0, 'a refused stream holds no subscription');

  const byQuery = await SseClient.connect(t, url, '?tags=a&x-auth-token=user-token');
  const byHeader = await SseClient.connect(t, url, '?tags=a', { 'X-AUTH-TOKEN': 'user-token' });
  t.is((await postPublish(url, { tags: ['a'], data: 'x' }, { 'x-auth-token': ADMIN })).status, 204);
  t.is((await byQuery.next()).data, 'x');
  t.is((await byHeader.next()).data, 'x');
});

test('SSE: a slow reader loses messages under the drop policy', async (t) => {
  const { server, url } = await httpServer(t, { limits: { maxBufferedBytes: 64 * 1024 } });
  const stream = await SseClient.connect(t, url, '?tags=a');
  stream.response.pause();
  stream.response.socket.pause();
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await flood(publisher, ['a'], () => server.connections.delivery.dropped + server.connections.delivery.disconnectedSlow > 0);
  t.true(server.connections.delivery.dropped > 0);
  t.is(server.connections.count, 2);
});

test('SSE: a slow reader is closed under the disconnect policy', async (t) => {
  const { server, url } = await httpServer(t, { limits: { maxBufferedBytes: 64 * 1024, slowConsumerPolicy: 'disconnect' } });
  const stream = await SseClient.connect(t, url, '?tags=a');
  stream.response.socket.pause();
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await flood(publisher, ['a'], () => server.connections.delivery.dropped + server.connections.delivery.disconnectedSlow > 0);
  await eventually(() => server.connections.delivery.disconnectedSlow === 1 && server.connections.count === 1);
  t.pass();
});

// --- WebSocket on the http port

test('GET /subscribe/websocket upgrades on the http port, with the same auth rules', async (t) => {
  const { server, url } = await authServer(t);
  const refused = await t.throwsAsync(WsClient.connect(t, websocketUrl(url, '?x-auth-token=guess')));
  t.is((refused as Error & { status?: number }).status, 401);
  const other = await t.throwsAsync(WsClient.connect(t, `${url.replace('http', 'ws')}/elsewhere`));
  t.is((other as Error & { status?: number }).status, 404);
  const client = await WsClient.connect(t, websocketUrl(url, '?x-auth-token=user-token'));
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
  t.is(server.connections.byTransport().get('ws'), 1);
});

test('other parts of the server add their own metrics to the registry GET /metrics serves', async (t) => {
  const { server, url } = await httpServer(t);
  const { metrics } = server;
  new Gauge({
    name: 'mist_backplane_connected',
    help: 'Whether the backplane is connected.',
    registers: [metrics.registry],
    collect() {
      this.set(1);
    },
  });
  t.true((await fetchText(`${url}/metrics`)).body.split('\n').includes('mist_backplane_connected 1'));
});

test('garbage instead of HTTP, and a broken WebSocket handshake, get 400 and disturb nothing', async (t) => {
  const { server, url } = await httpServer(t);
  const { port } = new URL(url);
  const raw = async (text: string): Promise<string> => {
    const socket = connect(Number(port), '127.0.0.1');
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    socket.end(text);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    await new Promise((resolve) => socket.once('close', resolve));
    return answer;
  };
  t.regex(await raw('\x00\x01binary garbage\r\n\r\n'), /^HTTP\/1\.1 400/);
  t.regex(await raw('GET /subscribe/websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'), /^HTTP\/1\.1 400/);
  t.is((await fetchText(`${url}/ping`)).body, 'pong');
  await eventually(() => server.connections.count === 0);
});

test('a publish whose client drops mid-body is logged at debug by path only: no error line, no token from the query', async (t) => {
  const { url, logs } = await authServer(t);
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /publish?x-auth-token=user-token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"tags":');
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.destroy();
  await eventually(() => logs.some((line) => line.msg === 'http request aborted by the client'), WAIT_MS, 'the abort logged');
  t.like(logs.find((line) => line.msg === 'http request aborted by the client'), { path: '/publish' });
  t.false(logs.some((line) => line.msg === 'http request failed'));
  t.false(JSON.stringify(logs).includes('user-token'));
});

test('with the token store down, publish, SSE and the WebSocket upgrade answer 503 and log no token', async (t) => {
  const { server, url, logs } = await authServer(t);
  server.auth.store!.tagsFor = async (token) => {
    throw new Error(`connection lost while reading ${token}`);
  };
  const published = await postPublish(url, { tags: ['a'], data: 'x' }, { 'x-auth-token': 'user-token' });
  t.is(published.status, 503);
  t.regex(errorOf(published), /authenticator unavailable/);
  const events = await fetchText(`${url}/subscribe/events?tags=a&x-auth-token=user-token`);
  t.is(events.status, 503);
  const error = await t.throwsAsync(WsClient.connect(t, websocketUrl(url, '?x-auth-token=user-token')));
  t.is((error as Error & { status?: number }).status, 503);
  t.false(logs.some((line) => line.msg === 'http request failed'));
  t.false(JSON.stringify(logs).includes('user-token'));
});

test('SSE: a stream whose token is unregistered ends at its next heartbeat', async (t) => {
  const { server, url } = await authServer(t, '?heartbeat=50');
  const stream = await SseClient.connect(t, url, '?tags=a', { 'x-auth-token': 'user-token' });
  const admin = await LineClient.connect(t, server.url('tcp'));
  t.is((await admin.request({ command: 'auth', data: ADMIN })).data, 'success');
  t.deepEqual(await admin.request({ command: 'unregister', data: 'user-token' }), { command: 'unregister', data: 'success' });
  await eventually(() => stream.closed, WAIT_MS, 'the stream ended');
  await eventually(() => server.connections.count === 1, WAIT_MS, 'only the admin connection left');
});
