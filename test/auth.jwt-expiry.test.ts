/**
 * Signed tokens that expire while their connections are open, over real
 * sockets: each transport is told and closed at expiry, not before; a fresh
 * `auth` before then keeps a connection open; a far expiry is not taken for
 * a near one. Tokens here expire within two to three seconds (JWT times are
 * whole seconds; the margin is for a busy machine); a connection whose token
 * expires later serves as the clock.
 */
import test from 'ava';
import { hs256, jwtScene, now, SECRET_ENV } from './helpers/jwt.ts';
import { eventually, LineClient, recordingSink } from './helpers/server.ts';
import { SseClient, websocketUrl, WsClient } from './helpers/web.ts';

const HS256_URI = `jwt://?secret-env=${SECRET_ENV}`;
const EXPIRED = { command: 'auth', error: 'token expired; closing' };

/** A TCP connection authenticated with `token`. */
async function tcpUser(t: Parameters<typeof jwtScene>[0], url: string, token: string): Promise<LineClient> {
  const client = await LineClient.connect(t, url);
  t.deepEqual(await client.request({ command: 'auth', data: token }), { command: 'auth', data: 'success' });
  return client;
}

test('tcp: at its token\'s expiry, not before, a connection is told and closed, and its subscriptions go', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const exp = now() + 3;
  const client = await tcpUser(t, scene.tcp, await hs256({ tags: ['a'], exp }));
  t.is((await client.request({ command: 'subscribe', tags: ['a'] })).data, 'success');
  t.is(scene.server.broker.subscriptionCount, 1);

  t.deepEqual(await client.next(10_000), EXPIRED);
  t.true(Date.now() >= exp * 1000, 'told before the token expired');
  await client.waitClosed();
  await eventually(() => scene.server.broker.subscriptionCount === 0, 5000, 'the subscription dropped');
  t.true(scene.logs.some((line) => line.msg === 'token expired: connection closed' && line.transport === 'tcp'));
});

test('websocket: a connection opened with an expiring token in the header is told and closed at expiry', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const exp = now() + 3;
  const client = await WsClient.connect(t, websocketUrl(scene.http), { headers: { 'x-auth-token': await hs256({ tags: ['a'], exp }) } });
  t.is((await client.request({ command: 'subscribe', tags: ['a'] })).data, 'success');
  t.deepEqual(await client.next(10_000), EXPIRED);
  t.true(Date.now() >= exp * 1000, 'told before the token expired');
  await client.waitClosed();
  t.is(client.closeCode, 1000);
});

test('sse: a stream opened with an expiring token ends at expiry, after an auth event saying so', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const exp = now() + 3;
  const stream = await SseClient.connect(t, scene.http, '?tags=a', { 'x-auth-token': await hs256({ tags: ['a'], exp }) });
  t.deepEqual(await stream.next(10_000), { event: 'auth', ...EXPIRED });
  t.true(Date.now() >= exp * 1000, 'told before the token expired');
  await stream.waitClosed();
  await eventually(() => scene.server.broker.subscriptionCount === 0, 5000, 'the subscription dropped');
});

test('an admin by claim is closed at its token\'s expiry too', async (t) => {
  const scene = await jwtScene(t, `${HS256_URI}&admin=true`);
  const client = await tcpUser(t, scene.tcp, await hs256({ tags: [], admin: true, exp: now() + 3 }));
  t.is((await client.request({ command: 'who' })).command, 'who');
  t.deepEqual(await client.next(10_000), EXPIRED);
  await client.waitClosed();
});

test('a fresh auth before expiry keeps a connection open past the first token\'s expiry; a wrong one does not', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  // A second more than elsewhere: this test does more before the token expires.
  const exp = now() + 4;
  const short = await hs256({ tags: ['a'], exp });
  const fresh = await hs256({ tags: ['a'], exp: now() + 600 });

  const renewed = await tcpUser(t, scene.tcp, short);
  t.is((await renewed.request({ command: 'subscribe', tags: ['a'] })).data, 'success');
  t.deepEqual(await renewed.request({ command: 'auth', data: fresh }), { command: 'auth', data: 'success' });
  const renewedWs = await WsClient.connect(t, websocketUrl(scene.http), { headers: { 'x-auth-token': short } });
  t.deepEqual(await renewedWs.request({ command: 'auth', data: fresh }), { command: 'auth', data: 'success' });
  // A wrong token changes nothing: the first token still expires.
  const failed = await tcpUser(t, scene.tcp, short);
  t.deepEqual(await failed.request({ command: 'auth', data: 'not-a-token' }), { command: 'auth', error: 'invalid token' });
  // Expires a second after the others: once it is closed, their first token's time has long passed.
  const clock = await tcpUser(t, scene.tcp, await hs256({ tags: ['a'], exp: exp + 1 }));

  t.deepEqual(await failed.next(10_000), EXPIRED);
  await failed.waitClosed();
  t.deepEqual(await clock.next(10_000), EXPIRED);
  await clock.waitClosed();
  await renewed.sync();
  await renewedWs.sync();
  t.deepEqual(await renewed.request({ command: 'list' }), { command: 'list', data: '[["a"]]' });
});

test('a token that expires beyond the longest timer (about 25 days) does not close its connection early', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const far = await tcpUser(t, scene.tcp, await hs256({ tags: ['a'], exp: now() + 40 * 24 * 3600 }));
  const clock = await tcpUser(t, scene.tcp, await hs256({ tags: ['a'], exp: now() + 3 }));
  t.deepEqual(await clock.next(10_000), EXPIRED);
  await clock.waitClosed();
  await far.sync();
  t.is(far.pending, 0);
});

test('a session closed before its identity expires is left alone: its timer went with it', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const { sink, written } = recordingSink();
  const expiresAt = Date.now() + 50;
  const closed = scene.server.connections.open(sink, { transport: 'test', remote: 'here' }, { role: 'user', token: 'x', expiresAt });
  closed.closed();
  const open = scene.server.connections.open(sink, { transport: 'test', remote: 'here' }, { role: 'user', token: 'y', expiresAt });
  await eventually(() => !open.isOpen, 5000, 'the open session expired');
  t.true(open.expired);
  t.false(closed.expired);
  t.deepEqual(written.map((frame) => frame.json), [JSON.stringify(EXPIRED)]);
});
