/**
 * Authentication end to end over TCP, with the memory authenticator: the admin
 * commands, what a registered token may do, and how changes reach the live
 * connections of that token.
 */
import test from 'ava';
import { ADMIN, authScene } from './helpers/auth.ts';
import { LineClient, startTestServer, withoutId } from './helpers/server.ts';

const READER = 'tok-reader-51ab';
const OTHER = 'tok-other-77cd';

test('admin: register, tags, set, unset, unregister reply exactly as the protocol says', async (t) => {
  const { admin, assertNoTokensLogged } = await authScene(t);
  t.deepEqual(await admin.request({ command: 'register', tags: ['b', 'a'], data: READER }), { command: 'register', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: READER }), { command: 'tags', tags: ['a', 'b'] });
  t.deepEqual(await admin.request({ command: 'set', tags: ['d', 'c'], data: READER }), { command: 'set', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: READER }), { command: 'tags', tags: ['a', 'b', 'c', 'd'] });
  t.deepEqual(await admin.request({ command: 'unset', tags: ['a', 'c'], data: READER }), { command: 'unset', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: READER }), { command: 'tags', tags: ['b', 'd'] });
  t.deepEqual(await admin.request({ command: 'unregister', data: READER }), { command: 'unregister', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: READER }), { command: 'tags', error: 'no such token' });
  assertNoTokensLogged([READER]);
});

test('admin: mistakes get an error reply, change nothing and leave the connection usable', async (t) => {
  const { admin, assertNoTokensLogged } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  const cases: Array<[unknown, unknown]> = [
    [{ command: 'register', tags: ['z'], data: READER }, { command: 'register', error: 'token already exists' }],
    [{ command: 'register', tags: ['a'], data: ADMIN }, { command: 'register', error: 'the admin token cannot be registered' }],
    [{ command: 'register', data: OTHER }, { command: 'register', error: '"register" needs at least one tag' }],
    [{ command: 'register', tags: ['a'] }, { command: 'register', error: '"register" needs the token as data (a non-empty string)' }],
    [{ command: 'register', tags: ['a'], data: '' }, { command: 'register', error: '"register" needs the token as data (a non-empty string)' }],
    [{ command: 'register', tags: ['a'], data: 7 }, { command: 'register', error: '"data" must be a string' }],
    [{ command: 'unregister', data: OTHER }, { command: 'unregister', error: 'no such token' }],
    [{ command: 'set', tags: ['a'], data: OTHER }, { command: 'set', error: 'no such token' }],
    [{ command: 'set', data: READER }, { command: 'set', error: '"set" needs at least one tag' }],
    [{ command: 'unset', tags: ['a'], data: OTHER }, { command: 'unset', error: 'no such token' }],
    [{ command: 'unset', data: READER }, { command: 'unset', error: '"unset" needs at least one tag' }],
    [{ command: 'tags' }, { command: 'tags', error: '"tags" needs the token as data (a non-empty string)' }],
  ];
  for (const [request, reply] of cases) t.deepEqual(await admin.request(request), reply, JSON.stringify(request));
  t.deepEqual(await admin.request({ command: 'tags', data: READER }), { command: 'tags', tags: ['a'] });
  t.is((await admin.request({ command: 'ping' })).data, 'pong');
  assertNoTokensLogged([READER, OTHER]);
});

test('admin: may use every basic command on every tag', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['x'], data: READER });
  const reader = await user(READER);
  t.is((await reader.request({ command: 'subscribe', tags: ['x'] })).data, 'success');
  t.is((await admin.request({ command: 'subscribe', tags: ['anything', 'at-all'] })).data, 'success');
  admin.send({ command: 'publish', tags: ['x', 'y'], data: 'from admin' });
  t.deepEqual(withoutId(await reader.next()), { command: 'publish', tags: ['x', 'y'], data: 'from admin' });
  t.deepEqual(await admin.request({ command: 'list' }), { command: 'list', data: '[["anything","at-all"]]' });
});

test('a registered token subscribes and publishes within its tags; outside them it gets an error and stays usable', async (t) => {
  const { admin, user, assertNoTokensLogged } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a', 'b'], data: READER });
  const reader = await user(READER);
  const listener = await user(READER);
  t.deepEqual(await listener.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.deepEqual(await reader.request({ command: 'subscribe', tags: ['a', 'b'] }), { command: 'subscribe', tags: ['a', 'b'], data: 'success' });
  t.deepEqual(await reader.request({ command: 'subscribe', tags: ['a', 'c'] }), { command: 'subscribe', error: 'not permitted to use tags: c' });
  t.deepEqual(await reader.request({ command: 'subscribe', tags: ['zz'] }), { command: 'subscribe', error: 'not permitted to use tags: zz' });
  // Publish T ⊆ tags is delivered; T with a tag outside them is refused and delivered to nobody.
  t.deepEqual(await reader.request({ command: 'publish', tags: ['a', 'c'], data: 'no' }), { command: 'publish', error: 'not permitted to use tags: c' });
  reader.send({ command: 'publish', tags: ['a', 'b'], data: 'yes' });
  t.deepEqual(withoutId(await listener.next()), { command: 'publish', tags: ['a', 'b'], data: 'yes' });
  await reader.sync();
  await listener.sync();
  t.is(listener.pending, 0);
  t.deepEqual(await reader.request({ command: 'list' }), { command: 'list', data: '[["a","b"]]' });
  t.deepEqual(await reader.request({ command: 'unsubscribe', tags: ['a', 'b'] }), { command: 'unsubscribe', tags: ['a', 'b'], data: 'success' });
  assertNoTokensLogged([READER]);
});

test('a registered token may not run admin commands', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  const reader = await user(READER);
  for (const command of ['register', 'unregister', 'set', 'unset', 'tags', 'tokens', 'who', 'listall']) {
    t.deepEqual(await reader.request({ command, tags: ['a'], data: OTHER }), { command, error: `"${command}" needs the admin token` });
  }
  t.deepEqual(await admin.request({ command: 'tags', data: OTHER }), { command: 'tags', error: 'no such token' });
});

test('unauthenticated: only ping and auth work, admin commands included', async (t) => {
  const { anonymous } = await authScene(t);
  const client = await anonymous();
  for (const command of ['register', 'unregister', 'set', 'unset', 'tags', 'tokens', 'who', 'listall', 'subscribe', 'publish', 'list', 'unsubscribe']) {
    t.deepEqual(await client.request({ command, tags: ['a'], data: 'x' }), { command, error: 'not authenticated: send auth first' });
  }
  t.is((await client.request({ command: 'ping' })).data, 'pong');
});

test('without an authenticator, admin commands are refused with a reason', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  for (const command of ['register', 'unregister', 'set', 'unset', 'tags', 'tokens', 'who', 'listall']) {
    const reply = await client.request({ command, tags: ['a'], data: READER });
    t.deepEqual(reply, { command, error: `"${command}" is an admin command: it needs an authenticator (start mist with --authenticator)` });
  }
});

test('set applies to the live connections of that token from their next command', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  const one = await user(READER);
  const two = await user(READER);
  t.deepEqual(await one.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
  await admin.request({ command: 'set', tags: ['b'], data: READER });
  t.is((await one.request({ command: 'subscribe', tags: ['b'] })).data, 'success');
  two.send({ command: 'publish', tags: ['a', 'b'], data: 'now allowed' });
  t.deepEqual(withoutId(await one.next()), { command: 'publish', tags: ['a', 'b'], data: 'now allowed' });
});

test('unset applies from the next command and drops the subscriptions that used the removed tags', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a', 'b'], data: READER });
  const reader = await user(READER);
  await reader.request({ command: 'subscribe', tags: ['a'] });
  await reader.request({ command: 'subscribe', tags: ['a', 'b'] });
  await reader.request({ command: 'subscribe', tags: ['b'] });
  t.deepEqual(await admin.request({ command: 'unset', tags: ['b'], data: READER }), { command: 'unset', data: 'success' });
  t.deepEqual(await reader.request({ command: 'list' }), { command: 'list', data: '[["a"]]' });
  t.deepEqual(await reader.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
  t.deepEqual(await reader.request({ command: 'publish', tags: ['b'], data: 'x' }), { command: 'publish', error: 'not permitted to use tags: b' });
  // A message on b alone no longer reaches it; one on a still does.
  admin.send({ command: 'publish', tags: ['b'], data: 'hidden' });
  admin.send({ command: 'publish', tags: ['a', 'b'], data: 'seen' });
  t.deepEqual(withoutId(await reader.next()), { command: 'publish', tags: ['a', 'b'], data: 'seen' });
  await reader.sync();
  t.is(reader.pending, 0);
});

test('unregister: the token\'s live connections lose their subscriptions, are refused from their next command, and cannot auth again', async (t) => {
  const { admin, user, anonymous, assertNoTokensLogged } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  await admin.request({ command: 'register', tags: ['a'], data: OTHER });
  const reader = await user(READER);
  const other = await user(OTHER);
  await reader.request({ command: 'subscribe', tags: ['a'] });
  await other.request({ command: 'subscribe', tags: ['a'] });
  t.deepEqual(await admin.request({ command: 'unregister', data: READER }), { command: 'unregister', data: 'success' });
  t.deepEqual(await reader.request({ command: 'list' }), { command: 'list', data: '[]' });
  t.deepEqual(await reader.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', error: 'token is no longer registered' });
  t.deepEqual(await reader.request({ command: 'publish', tags: ['a'], data: 'x' }), { command: 'publish', error: 'token is no longer registered' });
  t.is((await reader.request({ command: 'ping' })).data, 'pong');
  // Other tokens are untouched.
  admin.send({ command: 'publish', tags: ['a'], data: 'still here' });
  t.deepEqual(withoutId(await other.next()), { command: 'publish', tags: ['a'], data: 'still here' });
  await reader.sync();
  t.is(reader.pending, 0);
  const again = await anonymous();
  t.deepEqual(await again.request({ command: 'auth', data: READER }), { command: 'auth', error: 'invalid token' });
  // Registered anew, it works again, with its new tags.
  await admin.request({ command: 'register', tags: ['n'], data: READER });
  t.is((await reader.request({ command: 'subscribe', tags: ['n'] })).data, 'success');
  assertNoTokensLogged([READER, OTHER]);
});

test('a connection may auth again to change identity, keeping only the subscriptions the new one permits; a wrong token then leaves the old identity', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a', 'b'], data: READER });
  await admin.request({ command: 'register', tags: ['b'], data: OTHER });
  const client = await user(READER);
  await client.request({ command: 'subscribe', tags: ['a'] });
  await client.request({ command: 'subscribe', tags: ['b'] });
  t.is((await client.request({ command: 'auth', data: OTHER })).data, 'success');
  t.deepEqual(await client.request({ command: 'list' }), { command: 'list', data: '[["b"]]' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', error: 'not permitted to use tags: a' });
  t.deepEqual(await client.request({ command: 'auth', data: 'wrong-token-e4' }), { command: 'auth', error: 'invalid token' });
  t.is((await client.request({ command: 'subscribe', tags: ['b'] })).data, 'success');
});

test('who: connections now and since start, and distinct subscriptions', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a', 'b'], data: READER });
  const one = await user(READER);
  const two = await user(READER);
  await one.request({ command: 'subscribe', tags: ['a'] });
  await two.request({ command: 'subscribe', tags: ['a'] });
  await two.request({ command: 'subscribe', tags: ['b', 'a'] });
  two.close();
  await one.sync();
  const reply = await admin.request({ command: 'who' });
  t.is(reply.command, 'who');
  const who = JSON.parse(reply.data as string) as Record<string, number>;
  t.is(who.total, 3);
  t.true(who.connections! >= 2 && who.connections! <= 3);
});

test('listall: every distinct subscription on the node, sorted, JSON-encoded', async (t) => {
  const { admin, user } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a', 'b', 'c'], data: READER });
  const one = await user(READER);
  const two = await user(READER);
  await one.request({ command: 'subscribe', tags: ['c'] });
  await one.request({ command: 'subscribe', tags: ['b', 'a'] });
  await two.request({ command: 'subscribe', tags: ['a', 'b'] });
  await two.request({ command: 'subscribe', tags: ['a'] });
  t.deepEqual(await admin.request({ command: 'listall' }), { command: 'listall', data: '[["a"],["a","b"],["c"]]' });
  const who = JSON.parse((await admin.request({ command: 'who' })).data as string) as Record<string, number>;
  t.deepEqual(who, { connections: 3, total: 3, subscriptions: 3 });
});

test('tokens: every token with its tags, sorted by token, JSON-encoded', async (t) => {
  const { admin } = await authScene(t);
  t.deepEqual(await admin.request({ command: 'tokens' }), { command: 'tokens', data: '[]' });
  await admin.request({ command: 'register', tags: ['b', 'a'], data: READER });
  await admin.request({ command: 'register', tags: ['c'], data: OTHER });
  const listed = JSON.parse((await admin.request({ command: 'tokens' })).data as string) as unknown;
  t.deepEqual(listed, [{ token: READER, tags: ['a', 'b'] }, { token: OTHER, tags: ['c'] }].sort((x, y) => (x.token < y.token ? -1 : 1)));
});

test('no token ever reaches the log, at DEBUG, whatever the client does with it', async (t) => {
  const tokens = [READER, OTHER, 'wrong-1-f00d', 'wrong-2-f00d', 'wrong-3-f00d', 'json-broken-beef'];
  const { admin, user, anonymous, assertNoTokensLogged } = await authScene(t);
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  await admin.request({ command: 'register', tags: ['a'], data: READER });
  await admin.request({ command: 'set', tags: ['b'], data: OTHER });
  await admin.request({ command: 'tags', data: OTHER });
  const reader = await user(READER);
  await reader.request({ command: 'auth', data: 'wrong-1-f00d' });
  const guesser = await anonymous();
  for (const wrong of ['wrong-1-f00d', 'wrong-2-f00d', 'wrong-3-f00d']) guesser.send({ command: 'auth', data: wrong });
  await guesser.waitClosed();
  // A raw token instead of JSON: V8's parse error quotes the input.
  reader.write('json-broken-beef\n');
  t.is((await reader.next()).error !== undefined, true);
  await admin.request({ command: 'unregister', data: READER });
  await admin.request({ command: 'unregister', data: READER });
  assertNoTokensLogged(tokens);
});
