/**
 * Which web pages may use the server (`allowedOrigins`, host/origins.ts),
 * over real sockets: WebSocket upgrades on the ws and http listeners, event
 * streams and POST /publish refuse a page not allowed with 403, and their
 * CORS headers name only allowed pages.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { fetchText, postPublish, SseClient, websocketUrl, WsClient, type HttpReply } from './helpers/web.ts';

const EVIL = 'http://evil.example';
const ADMIN = 'admin-secret-77e0';

async function originServer(t: ExecutionContext, config: ConfigFile = {}) {
  const { server, logs } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0', 'ws://127.0.0.1:0'], ...config });
  const http = server.url('http');
  const subscriber = await LineClient.connect(t, server.url('tcp'));
  await subscriber.request({ command: 'subscribe', tags: ['a'] });
  /** `headers` plus an Origin header when `origin` is given. */
  const from = (origin: string | undefined, headers: Record<string, string> = {}) => (origin === undefined ? headers : { ...headers, origin });
  return {
    server,
    logs,
    http,
    subscriber,
    publish: (origin?: string, headers: Record<string, string> = {}) => postPublish(http, { tags: ['a'], data: 'x' }, from(origin, headers)),
    preflight: (origin?: string) => fetchText(`${http}/publish`, { method: 'OPTIONS', headers: from(origin) }),
    events: (origin?: string) => SseClient.connect(t, http, '?tags=a', from(origin)),
    /** A WebSocket upgrade on the listener of `url` (http or ws), as a plain request: its answer when refused. */
    upgrade: (url: string, origin?: string) =>
      fetchText(`${url.replace(/^ws/, 'http')}/subscribe/websocket`, {
        headers: from(origin, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') }),
      }),
    websocket: (url: string, origin?: string) => WsClient.connect(t, websocketUrl(url), { headers: from(origin) }),
    async refusedMetric(): Promise<string | undefined> {
      return (await server.metrics.render()).split('\n').find((line) => line.startsWith('mist_origin_refused_total '));
    },
  };
}

function errorOf(reply: HttpReply): string {
  return (JSON.parse(reply.body) as { error: string }).error;
}

test('/ping, /healthz and /metrics answer everyone; /ping and /metrics name only an allowed page in their CORS headers', async (t) => {
  const { http } = await originServer(t);
  for (const path of ['/ping', '/metrics']) {
    const bare = await fetchText(`${http}${path}`);
    t.is(bare.status, 200, `${path} without an Origin, as curl or Prometheus`);
    t.is(bare.headers['access-control-allow-origin'], undefined, path);
    const evil = await fetchText(`${http}${path}`, { headers: { origin: EVIL } });
    t.is(evil.status, 200, path);
    t.is(evil.headers['access-control-allow-origin'], undefined, `${path}: another site's page cannot read it`);
    t.is(evil.headers.vary, 'Origin', path);
    const local = await fetchText(`${http}${path}`, { headers: { origin: 'http://localhost:5173' } });
    t.is(local.headers['access-control-allow-origin'], 'http://localhost:5173', path);
  }
  const health = await fetchText(`${http}/healthz`, { headers: { origin: EVIL } });
  t.is(health.status, 200);
  t.is(health.headers['access-control-allow-origin'], undefined, '/healthz has no CORS header');
});

test('by default a page from another origin is refused with 403 naming it: WebSocket upgrades on both listeners, SSE, publish and its preflight', async (t) => {
  const scene = await originServer(t);
  const { server, logs, subscriber } = scene;
  const refusals: Array<[string, () => Promise<HttpReply>]> = [
    ['ws listener upgrade', () => scene.upgrade(server.url('ws'), EVIL)],
    ['http listener upgrade', () => scene.upgrade(scene.http, EVIL)],
    ['SSE', () => fetchText(`${scene.http}/subscribe/events?tags=a`, { headers: { origin: EVIL } })],
    ['publish', () => scene.publish(EVIL)],
    ['preflight', () => scene.preflight(EVIL)],
  ];
  for (const [what, send] of refusals) {
    const reply = await send();
    t.is(reply.status, 403, what);
    t.is(errorOf(reply), `origin not allowed: ${EVIL}`, what);
    t.is(reply.headers['access-control-allow-origin'], undefined, what);
  }
  t.is(await scene.refusedMetric(), 'mist_origin_refused_total 5');
  t.like(logs.find((line) => line.msg === 'origin not allowed'), { level: 'debug', origin: EVIL, transport: 'ws', address: '127.0.0.1' });
  t.is(logs.filter((line) => line.msg === 'origin not allowed').length, 5);
  // Nothing was published or subscribed; the server carries on for everybody else.
  t.is(server.connections.count, 1);
  t.is((await scene.publish()).status, 204);
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a'], data: 'x' });
});

test('a cross-site form post is refused by its Origin; the same body without one (curl, a server) publishes', async (t) => {
  const { http, subscriber } = await originServer(t);
  // What a plain HTML form with enctype="text/plain" can send to any address: no preflight, no JavaScript.
  const form = { 'content-type': 'text/plain' };
  const body = '{"tags":["a"],"data":"forged"}';
  const forged = await postPublish(http, body, { ...form, origin: EVIL });
  t.is(forged.status, 403);
  t.is((await postPublish(http, body, form)).status, 204);
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a'], data: 'forged' }, 'only the second, without an Origin');
  await subscriber.sync();
  t.is(subscriber.pending, 0);
});

test('by default pages served from this machine are allowed, on any port, and CORS headers name them exactly', async (t) => {
  const scene = await originServer(t);
  for (const origin of ['http://localhost:5173', 'https://localhost', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
    const published = await scene.publish(origin);
    t.is(published.status, 204, origin);
    t.is(published.headers['access-control-allow-origin'], origin, origin);
    t.is(published.headers.vary, 'Origin', origin);
  }
  const preflight = await scene.preflight('http://localhost:5173');
  t.is(preflight.status, 204);
  t.is(preflight.headers['access-control-allow-origin'], 'http://localhost:5173');
  t.is(preflight.headers.vary, 'Origin');
  const stream = await scene.events('http://127.0.0.1:5173');
  t.is(stream.response.headers['access-control-allow-origin'], 'http://127.0.0.1:5173');
  t.is(stream.response.headers.vary, 'Origin');
  t.false((await scene.websocket(scene.server.url('ws'), 'http://localhost:5173')).closed);
  t.false((await scene.websocket(scene.http, 'http://localhost:5173')).closed);
  // Look-alikes are other origins.
  for (const origin of ['http://localhost.evil.example', 'http://127.0.0.2', 'file://', 'http://localhost:5173/path']) {
    t.is((await scene.publish(origin)).status, 403, origin);
  }
});

test('a request without an Origin is allowed and gets no Access-Control-Allow-Origin, only Vary', async (t) => {
  const scene = await originServer(t);
  const published = await scene.publish();
  t.is(published.status, 204);
  t.is(published.headers['access-control-allow-origin'], undefined);
  t.is(published.headers.vary, 'Origin');
  const stream = await scene.events();
  t.is(stream.response.headers['access-control-allow-origin'], undefined);
  t.false((await scene.websocket(scene.server.url('ws'))).closed);
});

test('Origin null (a sandboxed page, a file) is refused unless listed', async (t) => {
  const refusing = await originServer(t);
  t.is((await refusing.publish('null')).status, 403);
  const listing = await originServer(t, { allowedOrigins: ['null'] });
  const published = await listing.publish('null');
  t.is(published.status, 204);
  t.is(published.headers['access-control-allow-origin'], 'null');
});

test('allowedOrigins ["*"] allows every page, with Access-Control-Allow-Origin: *', async (t) => {
  const scene = await originServer(t, { allowedOrigins: ['*'] });
  const published = await scene.publish(EVIL);
  t.is(published.status, 204);
  t.is(published.headers['access-control-allow-origin'], '*');
  t.is((await scene.preflight(EVIL)).headers['access-control-allow-origin'], '*');
  t.is((await scene.events(EVIL)).response.headers['access-control-allow-origin'], '*');
  t.false((await scene.websocket(scene.server.url('ws'), EVIL)).closed);
  t.is((await scene.publish()).headers['access-control-allow-origin'], '*');
});

test('an explicit list allows exactly its origins, loopback pages included only if listed', async (t) => {
  const scene = await originServer(t, { allowedOrigins: ['https://app.example.com', 'http://localhost:3000'] });
  const published = await scene.publish('https://app.example.com');
  t.is(published.status, 204);
  t.is(published.headers['access-control-allow-origin'], 'https://app.example.com');
  t.is(published.headers.vary, 'Origin');
  t.false((await scene.websocket(scene.http, 'https://app.example.com')).closed);
  t.is((await scene.publish('http://localhost:3000')).status, 204);
  for (const origin of ['https://app.example.com:8443', 'http://app.example.com', 'https://other.example.com', 'http://localhost:5173', EVIL]) {
    t.is((await scene.publish(origin)).status, 403, origin);
  }
  t.is((await scene.upgrade(scene.server.url('ws'), 'https://other.example.com')).status, 403);
  t.is((await scene.publish()).status, 204, 'no Origin: not a browser, welcome');
});

test('the Origin is checked before the token: a refused page costs no token check', async (t) => {
  const scene = await originServer(t, { authenticator: 'memory://', token: ADMIN });
  const refused = await scene.publish(EVIL, { 'x-auth-token': 'guess' });
  t.is(refused.status, 403);
  t.is((await scene.upgrade(scene.http, EVIL)).status, 403);
  t.is(scene.server.guard.failures, 0);
  t.is((await scene.publish('http://localhost:5173', { 'x-auth-token': ADMIN })).status, 204);
});

test('allowedOrigins entries are kept as a browser sends them, and mistakes are refused naming the entry', (t) => {
  t.deepEqual(buildConfig({ allowedOrigins: ['https://App.Example.com:443/', 'http://localhost:3000', 'null'] }).allowedOrigins, [
    'https://app.example.com',
    'http://localhost:3000',
    'null',
  ]);
  t.deepEqual(buildConfig({ allowedOrigins: ['*'] }).allowedOrigins, ['*']);
  t.is(buildConfig({}).allowedOrigins, undefined);
  const mistakes: Array<[unknown, RegExp]> = [
    [[], /allowedOrigins must be a non-empty list/],
    ['https://app.example.com', /allowedOrigins must be a non-empty list/],
    [['*', 'https://app.example.com'], /allowedOrigins must be \["\*"\] alone/],
    [['app.example.com'], /allowedOrigins\[0\] must be an origin/],
    [['https://app.example.com/path'], /allowedOrigins\[0\] must be an origin/],
    [['https://user:pass@app.example.com'], /allowedOrigins\[0\] must be an origin/],
    [['http://localhost', 'ftp://files.example.com'], /allowedOrigins\[1\] must be an origin/],
    [[7], /allowedOrigins\[0\] must be an origin/],
  ];
  for (const [value, message] of mistakes) {
    t.throws(() => buildConfig({ allowedOrigins: value as string[] }), { message }, JSON.stringify(value));
  }
});
