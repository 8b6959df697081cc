import test from 'ava';
import { LineClient, startTestServer } from './helpers/server.ts';

const ADMIN = 'admin-secret';

async function withAuth(t: Parameters<typeof startTestServer>[0]) {
  const { server, logs } = await startTestServer(t, { authenticator: 'memory://', token: ADMIN });
  return { server, logs, client: await LineClient.connect(t, server.url('tcp')) };
}

test('an authenticator without a token is refused at start-up with a clear message', async (t) => {
  const error = await t.throwsAsync(startTestServer(t, { authenticator: 'memory://' }));
  t.regex(error.message, /authenticator needs an admin token/);
});

test('an unknown authenticator scheme is refused at start-up naming it and the known ones', async (t) => {
  const error = await t.throwsAsync(startTestServer(t, { authenticator: 'nope://x', token: ADMIN }));
  t.regex(error.message, /unknown authenticator scheme "nope".*known: jwt, memory/);
});

test('with an authenticator, an unauthenticated connection may ping but not subscribe, publish or list', async (t) => {
  const { client } = await withAuth(t);
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  for (const command of ['subscribe', 'publish', 'list', 'unsubscribe']) {
    const reply = await client.request({ command, tags: ['a'], data: 'x' });
    t.deepEqual(reply, { command, error: 'not authenticated: send auth first' });
  }
});

test('the admin token authenticates with auth and then may use every basic command', async (t) => {
  const { client } = await withAuth(t);
  t.deepEqual(await client.request({ command: 'auth', data: ADMIN }), { command: 'auth', data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.deepEqual(await client.request({ command: 'list' }), { command: 'list', data: '[["a"]]' });
});

test('a wrong token gets an error, leaves the connection usable, and is never logged', async (t) => {
  const { client, logs } = await withAuth(t);
  t.deepEqual(await client.request({ command: 'auth', data: 'guess-1' }), { command: 'auth', error: 'invalid token' });
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await client.request({ command: 'list' }), { command: 'list', error: 'not authenticated: send auth first' });
  t.false(JSON.stringify(logs).includes('guess-1'));
});

test('three failed auth attempts close the connection; others are unaffected', async (t) => {
  const { server, client } = await withAuth(t);
  const bystander = await LineClient.connect(t, server.url('tcp'));
  t.is((await bystander.request({ command: 'auth', data: ADMIN })).data, 'success');
  await client.request({ command: 'auth', data: 'guess-1' });
  await client.request({ command: 'auth', data: 'guess-2' });
  const last = await client.request({ command: 'auth', data: 'guess-3' });
  t.regex(String(last.error), /too many failed attempts/);
  await client.waitClosed();
  t.is((await bystander.request({ command: 'ping' })).data, 'pong');
});

test('a successful auth between failures does not reset the count: the third failure still closes', async (t) => {
  const { client } = await withAuth(t);
  await client.request({ command: 'auth', data: 'guess-1' });
  t.is((await client.request({ command: 'auth', data: ADMIN })).data, 'success');
  await client.request({ command: 'auth', data: 'guess-2' });
  t.is((await client.request({ command: 'auth', data: ADMIN })).data, 'success');
  const last = await client.request({ command: 'auth', data: 'guess-3' });
  t.regex(String(last.error), /too many failed attempts/);
  await client.waitClosed();
});

test('auth without a token as string data is an error', async (t) => {
  const { client } = await withAuth(t);
  t.deepEqual(await client.request({ command: 'auth' }), { command: 'auth', error: 'auth needs the token as data' });
  t.deepEqual(await client.request({ command: 'auth', data: 42 }), { command: 'auth', error: '"data" must be a string' });
});

test('without an authenticator, auth succeeds with any token and admin commands are refused', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'auth', data: 'anything' }), { command: 'auth', data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
});
