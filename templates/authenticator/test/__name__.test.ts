/**
 * The __name__ authenticator: its token file on its own, then in a real mist
 * server (`authenticator: __name__:///…`, an admin token) over real TCP.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { CommandError, startServer } from 'mist';
import { connect, MistReplyError } from 'mist/client';
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

/** A mist server authenticating with the token file, and a client of it; closed at teardown. */
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
  const client = await connect(server.url('tcp'), { reconnect: false });
  t.teardown(() => client.close());
  return client;
}

test('a token from the file authenticates and may use its own tags only', async (t) => {
  const client = await serverAndClient(t);
  await t.throwsAsync(client.subscribe(['news']), { instanceOf: MistReplyError }, 'refused before auth');
  await client.auth('alice');
  await client.subscribe(['news']);
  await t.throwsAsync(client.subscribe(['secret']), { instanceOf: MistReplyError }, 'a tag the token lacks');
});

test('the admin token may use every tag; an unknown token is refused', async (t) => {
  const client = await serverAndClient(t);
  await t.throwsAsync(client.auth('mallory'), { instanceOf: MistReplyError });
  await client.auth('the-admin-token');
  await client.subscribe(['secret']);
  t.deepEqual(await client.list(), [['secret']]);
});

test('tokens the admin registers are written to the file', async (t) => {
  const file = await tokenFile(t, {});
  const client = await serverAndClient(t, file);
  await client.auth('the-admin-token');
  t.deepEqual(await client.request({ command: 'register', tags: ['sports'], data: 'bob' }), { command: 'register', data: 'success' });
  t.deepEqual(await client.request({ command: 'tags', data: 'bob' }), { command: 'tags', tags: ['sports'] });
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { bob: ['sports'] });
});
