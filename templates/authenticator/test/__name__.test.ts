/**
 * The __name__ authenticator: its token file on its own, then in a real mist
 * server (`authenticator: __name__:///…`, an admin token) over real TCP.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { CommandError, startServer } from 'mist';
import { __Name__Authenticator } from '../src/index.ts';

/** This package's folder: what a mist config's `plugins:` would name. */
const PLUGIN = fileURLToPath(new URL('..', import.meta.url));

async function tokenFile(t: ExecutionContext, tokens?: Record<string, string[]>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mist-__name__-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'tokens.json');
  if (tokens) await writeFile(file, JSON.stringify(tokens));
  return file;
}

test('the store starts empty without a file, writes every change, and reads it back', async (t) => {
  const file = await tokenFile(t);
  const store = await __Name__Authenticator.open(file);
  t.is(await store.tagsFor('alice'), undefined);
  await store.addToken('alice', ['b', 'a']);
  await store.addTags('alice', ['c']);
  await store.removeTags('alice', ['a']);
  await t.throwsAsync(store.addToken('alice', []), { instanceOf: CommandError, message: 'token already exists' });
  await t.throwsAsync(store.addTags('bob', ['x']), { instanceOf: CommandError, message: 'no such token' });
  await store.close();
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { alice: ['b', 'c'] });
  t.deepEqual(await (await __Name__Authenticator.open(file)).tagsFor('alice'), ['b', 'c']);
});

test('a token file that is not token → tags is refused', async (t) => {
  await t.throwsAsync(__Name__Authenticator.open(await tokenFile(t, { alice: 'news' } as never)), { message: /needs a list of tags/ });
});

/** A mist server authenticating with the token file, and a newline-delimited JSON client; closed at teardown. */
async function serverAndClient(t: ExecutionContext, file?: string) {
  file ??= await tokenFile(t, { alice: ['news'] });
  const server = await startServer({
    listeners: ['tcp://127.0.0.1:0'],
    logLevel: 'WARN',
    authenticator: `__name__://${file}`,
    token: 'the-admin-token',
    plugins: [PLUGIN],
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

test('a token from the file authenticates and may use its own tags only', async (t) => {
  const request = await serverAndClient(t);
  t.truthy((await request({ command: 'subscribe', tags: ['news'] })).error, 'refused before auth');
  t.deepEqual(await request({ command: 'auth', data: 'alice' }), { command: 'auth', data: 'success' });
  t.deepEqual(await request({ command: 'subscribe', tags: ['news'] }), { command: 'subscribe', tags: ['news'], data: 'success' });
  t.truthy((await request({ command: 'subscribe', tags: ['secret'] })).error, 'a tag the token lacks');
});

test('the admin token may use every tag; an unknown token is refused', async (t) => {
  const request = await serverAndClient(t);
  t.truthy((await request({ command: 'auth', data: 'mallory' })).error);
  t.deepEqual(await request({ command: 'auth', data: 'the-admin-token' }), { command: 'auth', data: 'success' });
  t.deepEqual(await request({ command: 'subscribe', tags: ['secret'] }), { command: 'subscribe', tags: ['secret'], data: 'success' });
});

test('tokens the admin registers are written to the file', async (t) => {
  const file = await tokenFile(t, {});
  const request = await serverAndClient(t, file);
  t.deepEqual(await request({ command: 'auth', data: 'the-admin-token' }), { command: 'auth', data: 'success' });
  t.deepEqual(await request({ command: 'register', tags: ['sports'], data: 'bob' }), { command: 'register', data: 'success' });
  t.deepEqual(await request({ command: 'tags', data: 'bob' }), { command: 'tags', tags: ['sports'] });
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { bob: ['sports'] });
});
