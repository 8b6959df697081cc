/**
 * The __name__ authenticator: its store on its own, then in a real mist
 * server (`authenticator: __name__://`, an admin token) over real TCP.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { startServer } from 'mist';
import { __Name__Authenticator } from '../src/index.ts';

/** This package's folder: what a mist config's `plugins:` would name. */
const PLUGIN = fileURLToPath(new URL('..', import.meta.url));

test('the store keeps tokens and their tags', async (t) => {
  const store = new __Name__Authenticator({ alice: ['news'] });
  t.deepEqual(await store.tagsFor('alice'), ['news']);
  t.is(await store.tagsFor('bob'), undefined);
  await store.addToken('bob', ['b', 'a']);
  await t.throwsAsync(store.addToken('bob', []));
  await store.addTags('bob', ['c']);
  await store.removeTags('bob', ['a']);
  t.deepEqual(await store.tagsFor('bob'), ['b', 'c']);
  await store.removeToken('bob');
  t.is(await store.tagsFor('bob'), undefined);
  await t.throwsAsync(store.addTags('bob', ['x']));
});

/** A mist server authenticating with __name__://, and a newline-delimited JSON client; closed at teardown. */
async function serverAndClient(t: ExecutionContext) {
  const server = await startServer({
    listeners: ['tcp://127.0.0.1:0'],
    logLevel: 'WARN',
    authenticator: '__name__://',
    token: 'the-admin-token',
    plugins: [{ module: PLUGIN, options: { tokens: { alice: ['news'] } } }],
  });
  t.teardown(() => server.close());
  const { hostname, port } = new URL(server.url('tcp'));
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const lines = createInterface({ input: socket })[Symbol.asyncIterator]();
  return async (message: unknown) => {
    socket.write(JSON.stringify(message) + '\n');
    return JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  };
}

test('a token from the options authenticates and may use its own tags only', async (t) => {
  const request = await serverAndClient(t);
  t.truthy((await request({ command: 'subscribe', tags: ['news'] })).error, 'refused before auth');
  t.deepEqual(await request({ command: 'auth', data: 'alice' }), { command: 'auth', data: 'success' });
  t.deepEqual(await request({ command: 'subscribe', tags: ['news'] }), { command: 'subscribe', tags: ['news'], data: 'success' });
  t.truthy((await request({ command: 'subscribe', tags: ['secret'] })).error, 'a tag the token lacks');
});

test('the admin token registers a token in the store, which can then authenticate', async (t) => {
  const admin = await serverAndClient(t);
  t.deepEqual(await admin({ command: 'auth', data: 'the-admin-token' }), { command: 'auth', data: 'success' });
  t.deepEqual(await admin({ command: 'register', tags: ['sports'], data: 'bob' }), { command: 'register', data: 'success' });
  t.deepEqual(await admin({ command: 'tags', data: 'bob' }), { command: 'tags', tags: ['sports'] });
});
