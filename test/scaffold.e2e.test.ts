/**
 * End to end: `mist new` packages, compiled and loaded into a mist server
 * through `plugins:` (a path, resolved from the config file's folder) and
 * exercised over real sockets; then the generated packages' own
 * `npm install` and `npm test`, as their author would run them, after the
 * packages were moved to another folder.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { ErrorCodes, MistError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { scaffold, type PluginKind } from '../cli/new.ts';
import { MistServer } from '../host/server.ts';
import { builtinPlugins } from '../plugins/preset.ts';
import { assertBuilt } from './helpers/build.ts';
import { REPO } from './helpers/paths.ts';
import { run } from './helpers/run.ts';
import { logCapture, type LogLines, withoutId } from './helpers/server.ts';

const TSC = join(REPO, 'node_modules', '.bin', 'tsc');

/** The folder the generated packages and the (notional) config file share. */
let root = '';

/**
 * What `npm install` gives a generated package, without the wait: mist (a
 * link to this checkout, whose package is its compiled dist/) and the types,
 * then the build of the package's prepare script.
 */
async function installByLinks(dir: string): Promise<void> {
  await mkdir(join(dir, 'node_modules'));
  await symlink(REPO, join(dir, 'node_modules', 'mist'), 'dir');
  await symlink(join(REPO, 'node_modules', '@types'), join(dir, 'node_modules', '@types'), 'dir');
  const built = await run(TSC, ['-p', dir], dir);
  if (built.code !== 0) throw new Error(`tsc -p ${dir} failed:\n${built.output}`);
}

test.before(async () => {
  assertBuilt();
  root = await mkdtemp(join(tmpdir(), 'mist-new-'));
  for (const [kind, name] of [
    ['listener', 'unix'],
    ['command', 'echo'],
    ['authenticator', 'tokens'],
  ] as const) {
    const dir = join(root, `mist-plugin-${name}`);
    await scaffold(kind, name, dir);
    await installByLinks(dir);
  }
});

test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** Starts a server as a config file in `root` would configure it; closed at teardown. */
async function serverWith(t: ExecutionContext, config: ConfigFile): Promise<{ server: MistServer; logs: LogLines }> {
  const logs: LogLines = [];
  const full = buildConfig({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'DEBUG', ...config }, root, join(root, 'mist.config.yaml'));
  const server = new MistServer(full, { logger: createLogger(full.logLevel, logCapture(logs)), plugins: builtinPlugins });
  t.teardown(() => server.close());
  await server.start();
  return { server, logs };
}

/** A newline-delimited JSON client over `socket` (TCP or Unix), destroyed at teardown. */
async function lineClient(t: ExecutionContext, socket: Socket) {
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const lines = createInterface({ input: socket })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  return {
    next,
    send: (message: unknown) => void socket.write(JSON.stringify(message) + '\n'),
    request: (message: unknown) => (socket.write(JSON.stringify(message) + '\n'), next()),
  };
}

function tcpClient(t: ExecutionContext, server: MistServer) {
  const { hostname, port } = new URL(server.url('tcp'));
  return lineClient(t, connect(Number(port), hostname));
}

test('a scaffolded unix:// listener listed by path serves clients on its socket, sharing the broker with tcp', async (t) => {
  const path = join(root, 'listener-test.sock');
  const { server } = await serverWith(t, { listeners: ['tcp://127.0.0.1:0', `unix://${path}`], plugins: ['./mist-plugin-unix'] });
  t.is(server.url('unix'), `unix://${path}`);

  const local = await lineClient(t, connect(path));
  t.deepEqual(await local.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await local.request({ command: 'subscribe', tags: ['a', 'b'] }), { command: 'subscribe', tags: ['a', 'b'], data: 'success' });
  const remote = await tcpClient(t, server);
  remote.send({ command: 'publish', tags: ['a', 'b', 'c'], data: { over: 'tcp' } });
  t.deepEqual(withoutId(await local.next()), { command: 'publish', tags: ['a', 'b', 'c'], data: { over: 'tcp' } });
  // Bad input is the core's business, whatever the transport.
  t.like(await local.request({ command: 'subscribe', tags: [] }), { command: 'subscribe' });

  await server.close();
  t.false(existsSync(path), 'the socket file is gone');
});

test('a scaffolded command listed by path with options answers over tcp', async (t) => {
  const { server } = await serverWith(t, { plugins: [{ module: './mist-plugin-echo', options: { prefix: '» ' } }] });
  const client = await tcpClient(t, server);
  t.deepEqual(await client.request({ command: 'echo', tags: ['x'], data: 'hi' }), { command: 'echo', tags: ['x'], data: '» hi' });
  t.deepEqual(await client.request({ command: 'echo' }), { command: 'echo', error: 'echo needs data' });
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
});

test('a scaffolded command with a mistyped option stops start-up naming the plugin, the key and the config file', async (t) => {
  const error = await t.throwsAsync(serverWith(t, { plugins: [{ module: './mist-plugin-echo', options: { prefix: 1 } }] }), {
    instanceOf: MistError,
  });
  t.is(error?.code, ErrorCodes.CONFIG);
  t.is(error?.message, `plugin "echo": options.prefix must be a string (${join(root, 'mist.config.yaml')})`);
});

test('two scaffolded plugins claiming one command name stop start-up naming both', async (t) => {
  const other = join(root, 'second-echo');
  await scaffold('command', 'echo', other);
  await installByLinks(other);
  const error = await t.throwsAsync(serverWith(t, { plugins: ['./mist-plugin-echo', './second-echo'] }), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.DUPLICATE_COMMAND);
  t.regex(error?.message ?? '', /command "echo" is declared by both plugin "echo" and plugin "echo"/);
});

test('a scaffolded authenticator named by --authenticator decides who may use which tags', async (t) => {
  const file = join(root, 'tokens.json');
  await writeFile(file, JSON.stringify({ alice: ['news'] }));
  const { server, logs } = await serverWith(t, { authenticator: `tokens://${file}`, token: 'admin-secret', plugins: ['./mist-plugin-tokens'] });
  t.like(logs.find((line) => line.msg === 'tokens loaded'), { tokens: 1 });
  const alice = await tcpClient(t, server);
  t.truthy((await alice.request({ command: 'subscribe', tags: ['news'] })).error, 'nothing before auth');
  t.truthy((await alice.request({ command: 'auth', data: 'bob' })).error, 'not in the file');
  t.deepEqual(await alice.request({ command: 'auth', data: 'alice' }), { command: 'auth', data: 'success' });
  t.deepEqual(await alice.request({ command: 'subscribe', tags: ['news'] }), { command: 'subscribe', tags: ['news'], data: 'success' });
  t.truthy((await alice.request({ command: 'subscribe', tags: ['sports'] })).error, 'not one of her tags');

  const admin = await tcpClient(t, server);
  t.deepEqual(await admin.request({ command: 'auth', data: 'admin-secret' }), { command: 'auth', data: 'success' });
  t.deepEqual(await admin.request({ command: 'subscribe', tags: ['sports'] }), { command: 'subscribe', tags: ['sports'], data: 'success' });
});

test('a scaffolded authenticator whose token file is broken stops start-up with a message naming it', async (t) => {
  const file = join(root, 'broken-tokens.json');
  await writeFile(file, '{"alice": "news"}');
  const error = await t.throwsAsync(serverWith(t, { authenticator: `tokens://${file}`, token: 'admin-secret', plugins: ['./mist-plugin-tokens'] }), {
    instanceOf: MistError,
  });
  t.regex(error?.message ?? '', /broken-tokens\.json: entry 1 needs a list of tags/);
  t.notRegex(error?.message ?? '', /alice/, 'tokens are never shown');
});

test('a scaffolded plugin listed before its npm install stops start-up saying to run npm install in its folder', async (t) => {
  await scaffold('command', 'fresh', join(root, 'fresh'));
  const error = await t.throwsAsync(serverWith(t, { plugins: ['./fresh'] }), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.PLUGIN);
  t.regex(error?.message ?? '', /^cannot load plugin "\.\/fresh": .*dist\/index\.js.*\. Not built yet\? Run `npm install` in the plugin's folder/);
});

test('a built plugin whose folder has no mist installed stops start-up naming mist and npm install', async (t) => {
  const dir = join(root, 'no-mist');
  await scaffold('command', 'lonely', dir);
  await installByLinks(dir);
  await rm(join(dir, 'node_modules'), { recursive: true });
  const error = await t.throwsAsync(serverWith(t, { plugins: ['./no-mist'] }), { instanceOf: MistError });
  t.regex(
    error?.message ?? '',
    /Cannot find package 'mist' imported from .*no-mist\/dist\/index\.js\. Run `npm install` in the plugin's folder: a plugin takes "mist" from its own node_modules, or from a folder above it$/,
  );
});

// ---- the generated packages' own install and tests ------------------------------------------

/**
 * Three fresh packages; `npm install` in the first, whose node_modules the
 * others share (the same dependencies, through relative links); then the
 * folder holding all three is moved, as to another machine.
 */
const installed = (async () => {
  const base = await mkdtemp(join(tmpdir(), 'mist-new-npm-'));
  const made = join(base, 'made-here');
  const dirs = {} as Record<PluginKind, string>;
  for (const [kind, name] of [
    ['listener', 'sock'],
    ['command', 'shout'],
    ['authenticator', 'token-file'],
  ] as const) {
    dirs[kind] = name;
    await scaffold(kind, name, join(made, name));
  }
  const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], join(made, dirs.command));
  for (const kind of ['listener', 'authenticator'] as const) {
    await symlink(join('..', dirs.command, 'node_modules'), join(made, dirs[kind], 'node_modules'), 'dir');
  }
  const moved = join(base, 'moved-there');
  await rename(made, moved);
  const at = Object.fromEntries(Object.entries(dirs).map(([kind, name]) => [kind, join(moved, name)])) as Record<PluginKind, string>;
  return { base, made, dirs: at, install };
})();
// Started at load: a failing promise is reported by the tests that await it, not as unhandled.
installed.catch(() => {});

test.after.always(async () => {
  const { base } = await installed.catch(() => ({ base: '' }));
  if (base) await rm(base, { recursive: true, force: true });
});

// Serial, so one npm command runs at a time (three ava runs at once would starve the rest of the
// suite on two cores) and each test's timeout covers its own command, not a wait for the others.
test.serial('a generated package installs with npm, taking mist from the tarball mist new packed into it, and builds', async (t) => {
  t.timeout(180_000);
  const { dirs, made, install } = await installed;
  t.log(`npm install: ${install.ms} ms`);
  t.is(install.code, 0, install.output);
  t.true(existsSync(join(dirs.command, 'node_modules', 'mist', 'dist', 'host', 'index.js')), 'the compiled mist, installed');
  t.true(existsSync(join(dirs.command, 'dist', 'index.js')), 'the plugin, built by prepare');
  for (const file of ['package.json', 'package-lock.json']) {
    const text = await readFile(join(dirs.command, file), 'utf8');
    t.false(text.includes(made) || text.includes(REPO), `${file} names no folder of the machine it was made on`);
  }
});

for (const kind of ['command', 'listener', 'authenticator'] as const) {
  test.serial(`the generated ${kind} package, moved after its install, passes its own npm test`, async (t) => {
    t.timeout(180_000);
    const { dirs, install } = await installed;
    if (install.code !== 0) return t.fail(`npm install failed:\n${install.output}`);
    const result = await run('npm', ['test'], dirs[kind]);
    t.log(`npm test (${kind}): ${result.ms} ms`);
    t.is(result.code, 0, result.output);
    t.regex(result.output, /\d+ tests? passed/);
    t.notRegex(result.output, /failed/);
  });
}
