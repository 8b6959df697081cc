/**
 * Token guessing slowed per address, across connections and transports, and
 * connections closed when they do not authenticate in time (core/guard.ts),
 * over real sockets. Delays are proven by order, never by a clock: a wrong
 * token's answer comes after the answer to a right token sent later.
 */
// core/guard.ts is built by tsyringe, which wants the Reflect polyfill loaded before it (host/ loads it for a server).
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { addressKey, TOO_MANY_UNAUTHENTICATED } from '../core/guard.ts';
import type { ConfigFile } from '../host/config-schema.ts';
import type { MistServer } from '../host/server.ts';
import { eventually, LineClient, startTestServer, type LogLines } from './helpers/server.ts';
import { fetchText, postPublish, websocketUrl, WsClient, type HttpReply } from './helpers/web.ts';

const ADMIN = 'admin-secret-4f2a';
const USER = 'user-token-8b1c';
/** Long enough that what is sent after a wrong guess is surely answered before it, on a busy machine too; short enough for a quick test. */
const DELAY_MS = 2000;

interface Scene {
  server: MistServer;
  logs: LogLines;
  tcp(): Promise<LineClient>;
  /** A TCP connection authenticated with `token`. */
  user(token?: string): Promise<LineClient>;
  /** A WebSocket, with the token in its upgrade when given. */
  ws(token?: string): Promise<WsClient>;
  /** `POST /publish` of tag `a`, with `token` when given. */
  publish(token?: string): Promise<HttpReply>;
  /** A WebSocket upgrade carrying `token`, as a plain HTTP request: its refusal's status and body. */
  upgrade(token: string): Promise<HttpReply>;
  /** The value of one line of `GET /metrics`. */
  metric(series: string): Promise<number>;
  assertNoTokensLogged(): void;
}

async function guarded(t: ExecutionContext, limits: ConfigFile['limits'] = {}, config: ConfigFile = {}): Promise<Scene> {
  const { server, logs } = await startTestServer(t, {
    listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'],
    authenticator: 'memory://',
    token: ADMIN,
    limits: { authFailureDelayMs: DELAY_MS, ...limits },
    ...config,
  });
  await server.auth.register(USER, ['a']);
  const http = server.url('http');
  const tcp = () => LineClient.connect(t, server.url('tcp'));
  return {
    server,
    logs,
    tcp,
    async user(token = USER) {
      const client = await tcp();
      t.deepEqual(await client.request({ command: 'auth', data: token }), { command: 'auth', data: 'success' });
      return client;
    },
    ws: (token) => WsClient.connect(t, websocketUrl(http), token === undefined ? {} : { headers: { 'x-auth-token': token } }),
    publish: (token) => postPublish(http, { tags: ['a'], data: 'x' }, token === undefined ? {} : { 'x-auth-token': token }),
    upgrade: (token) =>
      fetchText(`${http}/subscribe/websocket`, {
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), 'x-auth-token': token },
      }),
    async metric(series) {
      const text = await server.metrics.render();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? NaN : Number(line.slice(series.length + 1));
    },
    assertNoTokensLogged() {
      const text = JSON.stringify(logs);
      for (const token of [ADMIN, USER, 'guess']) t.false(text.includes(token), `${token} appears in the log`);
    },
  };
}

/** Records the order in which labelled promises settle. */
function arrivals(): { order: string[]; track<T>(label: string, promise: Promise<T>): Promise<T> } {
  const order: string[] = [];
  return {
    order,
    track: (label, promise) =>
      promise.finally(() => {
        order.push(label);
      }),
  };
}

function errorOf(reply: HttpReply): string {
  return (JSON.parse(reply.body) as { error: string }).error;
}

// --- the failure delay

test('a wrong token is answered after the delay: a right token and the admin token sent later on other connections are answered first', async (t) => {
  const { server, tcp, assertNoTokensLogged, metric } = await guarded(t);
  const [guesser, user, admin] = await Promise.all([tcp(), tcp(), tcp()]);
  const { order, track } = arrivals();
  // The ping behind the wrong guess waits for it: replies keep the connection's order.
  guesser.send({ command: 'auth', data: 'guess-1' });
  guesser.send({ command: 'ping' });
  const wrong = track('wrong', guesser.next());
  const pong = track('pong after wrong', guesser.next());
  await eventually(() => server.guard.failures === 1, 5000, 'the guess checked');
  const right = track('right', user.request({ command: 'auth', data: USER }));
  const adminReply = track('admin', admin.request({ command: 'auth', data: ADMIN }));
  t.deepEqual(await right, { command: 'auth', data: 'success' });
  t.deepEqual(await adminReply, { command: 'auth', data: 'success' });
  t.deepEqual(await wrong, { command: 'auth', error: 'invalid token' });
  t.deepEqual(await pong, { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(order, ['right', 'admin', 'wrong', 'pong after wrong']);
  t.is(await metric('mist_auth_failures_total'), 1);
  assertNoTokensLogged();
});

test('over HTTP and WebSocket too, a wrong token is answered after a right one sent later', async (t) => {
  const { server, publish, ws, upgrade, assertNoTokensLogged } = await guarded(t);
  const { order, track } = arrivals();
  const wrongPublish = track('wrong publish', publish('guess-1'));
  const wrongUpgrade = track('wrong upgrade', upgrade('guess-2'));
  await eventually(() => server.guard.failures === 2, 5000, 'both guesses checked');
  const [published, upgraded] = await Promise.all([track('right', publish(USER)), track('right', ws(USER))]);
  t.is(published.status, 204);
  t.false(upgraded.closed);
  t.is((await wrongPublish).status, 401);
  t.is((await wrongUpgrade).status, 401);
  t.deepEqual(order.slice(0, 2), ['right', 'right']);
  assertNoTokensLogged();
});

test('three wrong tokens on one connection still close it, each answered after the delay', async (t) => {
  const { server, tcp } = await guarded(t, { authFailureDelayMs: 50 });
  const guesser = await tcp();
  guesser.send({ command: 'auth', data: 'guess-1' });
  guesser.send({ command: 'auth', data: 'guess-2' });
  guesser.send({ command: 'auth', data: 'guess-3' });
  t.is((await guesser.next()).error, 'invalid token');
  t.is((await guesser.next()).error, 'invalid token');
  t.regex(String((await guesser.next()).error), /too many failed attempts/);
  await guesser.waitClosed();
  t.is(server.guard.failures, 3);
});

// --- the per-address cap

test('TCP: with 8 wrong guesses waiting from this address, a 9th connection is refused at once and closed; the 8 carry on; then new ones are accepted', async (t) => {
  const { server, logs, tcp, user, metric, assertNoTokensLogged } = await guarded(t);
  const bystander = await user();
  const guessers = await Promise.all(Array.from({ length: 8 }, () => tcp()));
  for (const [i, guesser] of guessers.entries()) guesser.send({ command: 'auth', data: `guess-${i}` });
  await eventually(() => server.guard.failures === 8, 5000, 'the 8 guesses checked');

  const { order, track } = arrivals();
  const answers = guessers.map((guesser) => track('guess', guesser.next()));
  // Refused at once, before its token is looked at: a right one is refused like any.
  const ninth = await tcp();
  t.deepEqual(await track('ninth', ninth.request({ command: 'auth', data: USER })), { command: 'auth', error: TOO_MANY_UNAUTHENTICATED });
  await ninth.waitClosed();
  t.is((await bystander.request({ command: 'ping' })).data, 'pong', 'an authenticated connection from the same address is not affected');

  for (const answer of answers) t.deepEqual(await answer, { command: 'auth', error: 'invalid token' });
  t.is(order[0], 'ninth');
  for (const guesser of guessers) t.is((await guesser.request({ command: 'ping' })).data, 'pong');
  t.is(server.guard.addresses, 0, 'an address is forgotten once its checks are answered');
  await user();

  t.like(
    logs.find((line) => line.msg === 'token check refused: too many from this address at once'),
    { level: 'debug', transport: 'tcp', address: '127.0.0.1', checking: 8 },
  );
  t.is(await metric('mist_auth_refused_total{reason="perAddress"}'), 1);
  t.is(await metric('mist_auth_failures_total'), 8);
  assertNoTokensLogged();
});

test('the cap counts checks from one address across transports; each transport refuses in its own terms', async (t) => {
  const { server, tcp, ws, publish, upgrade, user, metric } = await guarded(t, { maxUnauthenticatedPerAddress: 2 });
  const tcpGuesser = await tcp();
  tcpGuesser.send({ command: 'auth', data: 'guess-1' });
  const httpGuess = publish('guess-2');
  await eventually(() => server.guard.failures === 2, 5000, 'both guesses checked');

  const published = await publish(USER);
  t.is(published.status, 429);
  t.is(errorOf(published), TOO_MANY_UNAUTHENTICATED);
  t.is(published.headers.connection, 'close');
  const events = await fetchText(`${server.url('http')}/subscribe/events?tags=a&x-auth-token=${USER}`);
  t.is(events.status, 429);
  const upgraded = await upgrade(USER);
  t.is(upgraded.status, 429);
  t.is(errorOf(upgraded), TOO_MANY_UNAUTHENTICATED);
  // A WebSocket opened without a token is refused when it sends auth: an error reply, then the close.
  const socket = await ws();
  t.deepEqual(await socket.request({ command: 'auth', data: USER }), { command: 'auth', error: TOO_MANY_UNAUTHENTICATED });
  await socket.waitClosed();
  t.is(await metric('mist_auth_refused_total{reason="perAddress"}'), 4);

  t.deepEqual(await tcpGuesser.next(), { command: 'auth', error: 'invalid token' });
  t.is((await httpGuess).status, 401);
  t.is((await publish(USER)).status, 204);
  t.false((await ws(USER)).closed);
  await user();
});

test('a failed check keeps its slot for its whole delay, even when its client leaves at once', async (t) => {
  const { server, tcp, user, publish } = await guarded(t, { maxUnauthenticatedPerAddress: 2 });
  const bystander = await user();
  const tcpGuesser = await tcp();
  tcpGuesser.send({ command: 'auth', data: 'guess-1' });
  const httpGuesser = request(`${server.url('http')}/publish`, { method: 'POST', headers: { 'x-auth-token': 'guess-2' } });
  httpGuesser.on('error', () => {});
  httpGuesser.end('{"tags":["a"]}');
  await eventually(() => server.guard.failures === 2, 5000, 'both guesses checked');
  tcpGuesser.close();
  httpGuesser.destroy();
  // A round trip after the closes: the server has seen them.
  await bystander.sync();
  t.is((await publish(USER)).status, 429, 'leaving does not free a slot before its delay ends');
  await eventually(() => server.guard.addresses === 0, 5000, 'the delays over');
  t.is((await publish(USER)).status, 204);
});

test('a good user behind the same address authenticates at once while an attacker holds every slot but one, and idle connections hold none', async (t) => {
  const { server, tcp, user, publish } = await guarded(t, { maxUnauthenticatedPerAddress: 3 });
  const authenticated = await user();
  // Idle unauthenticated connections: they hold no slot.
  await Promise.all(Array.from({ length: 5 }, () => tcp()));
  const attackers = await Promise.all([tcp(), tcp()]);
  for (const attacker of attackers) attacker.send({ command: 'auth', data: 'guess' });
  const wrong = attackers.map((attacker) => attacker.next());
  await eventually(() => server.guard.failures === 2, 5000, 'the guesses checked');

  const { order, track } = arrivals();
  track('wrong', Promise.all(wrong));
  await track('good user', user());
  t.deepEqual(order, ['good user'], 'answered while the guesses wait');

  // At the cap, the trade-off: new authentications from the address are refused until a slot frees…
  const third = await tcp();
  third.send({ command: 'auth', data: 'guess' });
  await eventually(() => server.guard.failures === 3, 5000, 'the third guess checked');
  const refused = await tcp();
  t.deepEqual(await refused.request({ command: 'auth', data: USER }), { command: 'auth', error: TOO_MANY_UNAUTHENTICATED });
  // …while connections already authenticated carry on.
  t.is((await authenticated.request({ command: 'ping' })).data, 'pong');
  authenticated.send({ command: 'publish', tags: ['a'], data: 'still here' });
  await authenticated.sync();
  await Promise.all([...wrong, third.next()]);
  t.is((await publish(USER)).status, 204);
});

test('another address is not affected: with every slot of 127.0.0.1 taken, a client from ::1 authenticates at once', async (t) => {
  const { server, tcp } = await guarded(t, { maxUnauthenticatedPerAddress: 1 }, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0', 'tcp://[::1]:0'] });
  const attacker = await tcp();
  attacker.send({ command: 'auth', data: 'guess' });
  await eventually(() => server.guard.failures === 1, 5000, 'the guess checked');
  const { order, track } = arrivals();
  const wrong = track('wrong', attacker.next());
  const other = await LineClient.connect(t, server.urls[2]!);
  t.deepEqual(await track('other address', other.request({ command: 'auth', data: USER })), { command: 'auth', data: 'success' });
  await wrong;
  t.deepEqual(order, ['other address', 'wrong']);
});

test('without an authenticator there is no delay, no cap and no deadline', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxUnauthenticatedPerAddress: 1, authTimeoutMs: 50 } });
  const clients = await Promise.all(Array.from({ length: 3 }, () => LineClient.connect(t, server.url('tcp'))));
  for (const client of clients) client.send({ command: 'auth', data: 'anything' });
  for (const client of clients) t.deepEqual(await client.next(), { command: 'auth', data: 'success' });
  const idle = await LineClient.connect(t, server.url('tcp'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is((await idle.request({ command: 'ping' })).data, 'pong');
});

// --- the deadline to authenticate

test('a connection not authenticated within authTimeoutMs gets an error reply and is closed; authenticated ones stay', async (t) => {
  const { logs, tcp, user, ws, metric } = await guarded(t, { authTimeoutMs: 300 });
  const authenticated = await user();
  const upgraded = await ws(USER);
  const idle = await tcp();
  const idleWs = await ws();
  t.deepEqual(await idle.next(), { command: 'auth', error: 'not authenticated within 300 ms; closing' });
  await idle.waitClosed();
  t.deepEqual(await idleWs.next(), { command: 'auth', error: 'not authenticated within 300 ms; closing' });
  await idleWs.waitClosed();
  // Both opened before the idle ones timed out: past their deadline, they are still served.
  t.is((await authenticated.request({ command: 'ping' })).data, 'pong');
  t.is((await upgraded.request({ command: 'ping' })).data, 'pong');
  t.is(await metric('mist_auth_refused_total{reason="timeout"}'), 2);
  t.is(logs.filter((line) => line.msg === 'not authenticated in time: closing').length, 2);
});

// Serial: it counts the process's timers, which the other tests' servers would add to.
test.serial('the deadline timer goes when the connection authenticates or closes', async (t) => {
  const { server, tcp } = await guarded(t, { authTimeoutMs: 600_000 });
  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const before = timers();
  const clients = await Promise.all(Array.from({ length: 20 }, () => tcp()));
  await eventually(() => server.connections.count === 20, 5000, 'the connections open');
  t.true(timers() >= before + 20, 'one deadline per connection');
  for (const client of clients.slice(0, 10)) t.is((await client.request({ command: 'auth', data: USER })).data, 'success');
  for (const client of clients.slice(10)) client.close();
  await eventually(() => server.connections.count === 10, 5000, 'the closed ones gone');
  t.true(timers() <= before, `${timers()} timers, ${before} before`);
});

// --- addresses

test('addresses count by IPv4 address, IPv4-mapped or not, and by IPv6 /64', (t) => {
  t.is(addressKey('127.0.0.1'), '127.0.0.1');
  t.is(addressKey('::ffff:127.0.0.1'), '127.0.0.1');
  t.is(addressKey('::1'), '0:0:0:0::/64');
  t.is(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.is(addressKey('2001:DB8:1:2::9'), '2001:db8:1:2::/64');
  t.is(addressKey('2001:db8:1:3::1'), '2001:db8:1:3::/64');
  t.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.is(addressKey('::1.2.3.4'), '0:0:0:0::/64');
  t.is(addressKey('/run/mist.sock'), '/run/mist.sock');
});
