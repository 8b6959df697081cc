/**
 * `mist tokens …` against a real server with the memory authenticator: what
 * each subcommand prints, what it changes, and how it exits. All run in
 * this process through main().
 */
import test, { type ExecutionContext } from 'ava';
import { MistCli, type MistOptions } from './helpers/mist-cli.ts';
import { startTestServer } from './helpers/server.ts';

const ADMIN = 'admin-secret';

/** A server requiring tokens, and `mist tokens …` against it with the admin token. */
async function tokensScene(t: ExecutionContext) {
  const { server } = await startTestServer(t, { authenticator: 'memory://', token: ADMIN });
  const url = server.url('tcp');
  const tokens = (args: string[], options: MistOptions = {}) => MistCli.run(t, ['tokens', ...args, '--url', url, '--token', ADMIN], options);
  return { server, url, tokens };
}

async function ok(t: ExecutionContext, cli: Promise<MistCli & { status: { code: number | null } }>, stdout: string): Promise<MistCli> {
  const done = await cli;
  t.is(done.status.code, 0, done.stderr);
  t.is(done.stdout, stdout);
  return done;
}

test('register, tags, set, unset, unregister: each prints what it did and exits 0', async (t) => {
  const { tokens } = await tokensScene(t);
  await ok(t, tokens(['register', 'reader', '--tags', 'news, sports']), 'registered with tags: news, sports\n');
  await ok(t, tokens(['tags', 'reader']), 'news\nsports\n');
  await ok(t, tokens(['tags', 'reader', '--json']), '["news","sports"]\n');
  await ok(t, tokens(['set', 'reader', '--tags', 'weather,news']), 'tags now: news, sports, weather\n');
  await ok(t, tokens(['unset', 'reader', '--tags', 'news,sports,weather']), 'tags now: (none)\n');
  await ok(t, tokens(['unregister', 'reader']), 'unregistered\n');
  const gone = await tokens(['tags', 'reader']);
  t.is(gone.status.code, 1);
  t.is(gone.stderr, 'mist: tags refused: no such token\n');
});

test('register without a TOKEN makes one, prints it alone on stdout, and it works', async (t) => {
  const { tokens, url } = await tokensScene(t);
  const made = await tokens(['register', '--tags', 'deploy']);
  t.is(made.status.code, 0, made.stderr);
  t.regex(made.stdout, /^[\w-]{32}\n$/);
  t.is(made.stderr, 'mist: registered a new token with tags: deploy\n');
  const token = made.stdout.trim();
  const published = await MistCli.run(t, ['publish', '--tags', 'deploy', '--data', 'x', '--url', url, '--token', token]);
  t.is(published.status.code, 0, published.stderr);
  const denied = await MistCli.run(t, ['publish', '--tags', 'other', '--data', 'x', '--url', url, '--token', token]);
  t.is(denied.stderr, 'mist: publish refused: not permitted to use tags: other\n');
});

test('list prints every token with its tags, aligned and sorted, or JSON with --json', async (t) => {
  const { tokens } = await tokensScene(t);
  const empty = await ok(t, tokens(['list']), '');
  t.is(empty.stderr, 'mist: no tokens registered\n');
  await ok(t, tokens(['list', '--json']), '[]\n');
  await ok(t, tokens(['register', 'writer', '--tags', 'news']), 'registered with tags: news\n');
  await ok(t, tokens(['register', 'a-reader', '--tags', 'sports,news']), 'registered with tags: sports, news\n');
  await ok(t, tokens(['list']), 'a-reader  news, sports\nwriter    news\n');
  await ok(t, tokens(['list', '--json']), '[{"token":"a-reader","tags":["news","sports"]},{"token":"writer","tags":["news"]}]\n');
});

test('the admin token may come from $MIST_ADMIN_TOKEN, before $MIST_TOKEN', async (t) => {
  const { url } = await tokensScene(t);
  const cli = await MistCli.run(t, ['tokens', 'register', 'reader', '--tags', 'a', '--url', url], {
    env: { MIST_ADMIN_TOKEN: ADMIN, MIST_TOKEN: 'a-user-token' },
  });
  t.is(cli.status.code, 0, cli.stderr);
  const fromMistToken = await MistCli.run(t, ['tokens', 'tags', 'reader', '--url', url], { env: { MIST_ADMIN_TOKEN: '', MIST_TOKEN: ADMIN } });
  t.is(fromMistToken.stdout, 'a\n', fromMistToken.stderr);
});

const refused = test.macro({
  async exec(t, args: string[], stderr: string, options: { token?: string; noAuthenticator?: boolean } = {}) {
    const { server } = await startTestServer(t, options.noAuthenticator ? {} : { authenticator: 'memory://', token: ADMIN });
    const url = server.url('tcp');
    await MistCli.run(t, ['tokens', 'register', 'reader', '--tags', 'a', '--url', url, '--token', ADMIN]);
    const cli = await MistCli.run(t, ['tokens', ...args, '--url', url, '--token', options.token ?? ADMIN]);
    t.is(cli.status.code, 1);
    t.is(cli.stderr, stderr);
    t.is(cli.stdout, '');
  },
  title: (what = '') => `${what} exits 1 with the server's reason`,
});

test('registering a token that exists', refused, ['register', 'reader', '--tags', 'b'], 'mist: register refused: token already exists\n');
test('set on an unknown token', refused, ['set', 'nobody', '--tags', 'b'], 'mist: set refused: no such token\n');
test('unset on an unknown token', refused, ['unset', 'nobody', '--tags', 'b'], 'mist: unset refused: no such token\n');
test('unregistering an unknown token', refused, ['unregister', 'nobody'], 'mist: unregister refused: no such token\n');
test('registering the admin token', refused, ['register', ADMIN, '--tags', 'b'], 'mist: register refused: the admin token cannot be registered\n');
test('a registered token instead of the admin token', refused, ['list'], 'mist: list refused: "tokens" needs the admin token\n', { token: 'reader' });
test('a wrong admin token', refused, ['list'], 'mist: authentication failed: invalid token\n', { token: 'wrong' });
test(
  'a server without an authenticator',
  refused,
  ['list'],
  'mist: list refused: "tokens" is an admin command: it needs an authenticator (start mist with --authenticator)\n',
  { noAuthenticator: true },
);

const usage = test.macro({
  async exec(t, args: string[], message: string) {
    const cli = await MistCli.run(t, ['tokens', ...args], { env: { MIST_ADMIN_TOKEN: '', MIST_TOKEN: '' } });
    t.is(cli.status.code, 2);
    t.true(cli.stderr.startsWith(`mist: ${message}\nUsage:\n  mist tokens list\n`), cli.stderr);
    t.regex(cli.stderr, /Run "mist tokens --help" for more\.\n$/);
    t.is(cli.stdout, '');
  },
  title: (what = '') => `mist tokens with ${what} exits 2 with a usage message`,
});

test('no subcommand', usage, ['--token', ADMIN], 'give a tokens command: list, register, tags, set, unset, unregister');
test('an unknown subcommand', usage, ['frobnicate', '--token', ADMIN], 'unknown tokens command "frobnicate" (known: list, register, tags, set, unset, unregister)');
test('no admin token', usage, ['list'], 'mist tokens needs the admin token: give --token T, or set $MIST_ADMIN_TOKEN');
test('no TOKEN for tags', usage, ['tags', '--token', ADMIN], 'tokens tags needs a TOKEN');
test('an empty TOKEN', usage, ['unregister', '', '--token', ADMIN], 'tokens unregister needs a TOKEN');
test('no --tags for set', usage, ['set', 'reader', '--token', ADMIN], '--tags needs at least one tag (e.g. --tags a,b)');
test('--tags for unregister', usage, ['unregister', 'reader', '--tags', 'a', '--token', ADMIN], '--tags is for register, set and unset, not unregister');
test('--json for set', usage, ['set', 'reader', '--tags', 'a', '--json', '--token', ADMIN], '--json is for list and tags, not set');
test('an argument too many', usage, ['tags', 'reader', 'writer', '--token', ADMIN], 'unexpected argument "writer" after tokens tags');
test('a TOKEN for list', usage, ['list', 'reader', '--token', ADMIN], 'unexpected argument "reader" after tokens list');
test('a mistyped flag', usage, ['list', '--tokne', ADMIN], 'unknown flag --tokne (did you mean --token?)');
