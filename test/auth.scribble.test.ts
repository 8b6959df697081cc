/**
 * scribble:// end to end: tokens survive a restart, concurrent admin
 * commands lose nothing, and a bad database file stops start-up with a
 * message naming it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ErrorCodes, type MistError } from '../core/errors.ts';
import { SCRIBBLE_FILE } from '../plugins/authenticators/scribble.authenticator.ts';
import { ADMIN, authScene } from './helpers/auth.ts';
import { tempFolder } from './helpers/files.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { LineClient, startTestServer } from './helpers/server.ts';

const TOKEN = 'tok-scribble-3e9f';

async function database(t: ExecutionContext): Promise<{ dir: string; uri: string; file: string }> {
  const dir = join(await tempFolder(t), 'db');
  return { dir, uri: `scribble://?db=${encodeURIComponent(dir)}`, file: join(dir, SCRIBBLE_FILE) };
}

test('tokens registered and changed by admin commands survive a server restart', async (t) => {
  const { uri, file } = await database(t);
  const first = await authScene(t, { authenticator: uri });
  await first.admin.request({ command: 'register', tags: ['a', 'b'], data: TOKEN });
  await first.admin.request({ command: 'register', tags: ['x'], data: 'tok-gone-11' });
  await first.admin.request({ command: 'unset', tags: ['b'], data: TOKEN });
  await first.admin.request({ command: 'set', tags: ['c'], data: TOKEN });
  await first.admin.request({ command: 'unregister', data: 'tok-gone-11' });
  await first.server.close();

  const second = await authScene(t, { authenticator: uri });
  t.deepEqual(await second.admin.request({ command: 'tags', data: TOKEN }), { command: 'tags', tags: ['a', 'c'] });
  t.deepEqual(await second.admin.request({ command: 'tags', data: 'tok-gone-11' }), { command: 'tags', error: 'no such token' });
  const user = await second.user(TOKEN);
  t.is((await user.request({ command: 'subscribe', tags: ['c'] })).data, 'success');
  t.deepEqual(await user.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
  // The file is plain JSON an operator can read.
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { tokens: { [TOKEN]: ['a', 'c'] } });
});

test('100 concurrent set commands from several admin connections lose no update, across a restart', async (t) => {
  const { uri } = await database(t);
  const first = await authScene(t, { authenticator: uri });
  await first.admin.request({ command: 'register', tags: ['base'], data: TOKEN });
  const admins = await Promise.all(Array.from({ length: 5 }, () => first.user(ADMIN)));
  const tags = Array.from({ length: 100 }, (_, i) => `t${String(i).padStart(3, '0')}`);
  // Every command is sent before any reply is read: they run at once, five connections wide.
  tags.forEach((tag, i) => admins[i % admins.length]!.send({ command: 'set', tags: [tag], data: TOKEN }));
  for (const [i] of tags.entries()) {
    t.deepEqual(await admins[i % admins.length]!.next(), { command: 'set', data: 'success' });
  }
  await first.server.close();

  const second = await authScene(t, { authenticator: uri });
  t.deepEqual(await second.admin.request({ command: 'tags', data: TOKEN }), { command: 'tags', tags: ['base', ...tags] });
  second.assertNoTokensLogged([TOKEN]);
});

test('a database file that is not JSON stops start-up with an error naming the file, not quoting it', async (t) => {
  const { dir, uri, file } = await database(t);
  await mkdir(dir, { recursive: true });
  await writeFile(file, '{"tokens": {"tok-leaked-secret": ["a"]');
  const error = await t.throwsAsync<MistError>(startTestServer(t, { authenticator: uri, token: ADMIN }));
  t.is(error.code, ErrorCodes.AUTHENTICATOR);
  t.true(error.message.includes(file), error.message);
  t.regex(error.message, /not valid JSON/);
  t.false(error.message.includes('tok-leaked-secret'));
});

test('a directory where the database file should be stops start-up with an error naming the file', async (t) => {
  const { uri, file } = await database(t);
  await mkdir(file, { recursive: true });
  const error = await t.throwsAsync<MistError>(startTestServer(t, { authenticator: uri, token: ADMIN }));
  t.is(error.code, ErrorCodes.AUTHENTICATOR);
  t.true(error.message.includes(file), error.message);
  t.regex(error.message, /EISDIR|directory/);
});

test('a database file of the wrong shape stops start-up with an error naming the file', async (t) => {
  const { dir, uri, file } = await database(t);
  await mkdir(dir, { recursive: true });
  await writeFile(file, '{"tokens": {"t": "a"}}');
  const error = await t.throwsAsync<MistError>(startTestServer(t, { authenticator: uri, token: ADMIN }));
  t.regex(error.message, /is not valid: each token must map to a list of tags/);
  t.true(error.message.includes(file));
});

test('scribble:// without ?db= is refused at start-up saying how to write it', async (t) => {
  const error = await t.throwsAsync<MistError>(startTestServer(t, { authenticator: 'scribble://', token: ADMIN }));
  t.regex(error.message, /scribble:\/\/\?db=/);
});

test('a missing database folder is created, and the server starts empty', async (t) => {
  const { uri } = await database(t);
  const { admin } = await authScene(t, { authenticator: uri });
  t.deepEqual(await admin.request({ command: 'tags', data: TOKEN }), { command: 'tags', error: 'no such token' });
});

test('from the command line, a corrupt database file exits 2 naming the file', async (t) => {
  const { dir, uri, file } = await database(t);
  await mkdir(dir, { recursive: true });
  await writeFile(file, 'not json');
  const { status, stdout, stderr } = await MistCli.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--authenticator', uri, '--token', ADMIN]);
  t.is(status.code, 2);
  t.true(stderr.includes(`cannot read token database ${file}`), stderr);
  t.false(stdout.includes(ADMIN) || stderr.includes(ADMIN));
});

test('an unauthenticated client of a scribble server may only ping and auth', async (t) => {
  const { uri } = await database(t);
  const { server } = await authScene(t, { authenticator: uri });
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', error: 'not authenticated: send auth first' });
  t.is((await client.request({ command: 'ping' })).data, 'pong');
});
