/**
 * End to end: `mist new` packages, each installed into a mist server through
 * `plugins:` (a path, resolved from the config file's folder) and exercised
 * over real sockets; then the generated packages' own `npm install` and
 * `npm test`, as their author would run them.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { ErrorCodes, MistError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { scaffold, type PluginKind } from '../cli/new.ts';
import { MistServer } from '../host/server.ts';
import { builtinPlugins } from '../plugins/preset.ts';
import { logCapture, type LogLines, withoutId } from './helpers/server.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** The folder the generated packages and the (notional) config file share. */
let root = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mist-new-'));
  for (const [kind, name] of [
    ['listener', 'unix'],
    ['command', 'echo'],
    ['authenticator', 'tokens'],
  ] as const) {
    const dir = join(root, `mist-plugin-${name}`);
    await scaffold(kind, name, dir);
    // What `npm install` does with the package's "mist": "file:…" dependency, without the wait.
    await mkdir(join(dir, 'node_modules'));
    await symlink(REPO, join(dir, 'node_modules', 'mist'), 'dir');
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
  await mkdir(join(other, 'node_modules'));
  await symlink(REPO, join(other, 'node_modules', 'mist'), 'dir');
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

// ---- the generated packages' own install and tests ------------------------------------------

/** The environment of a developer's shell: none of this test run's npm, ava or tsx settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(npm_|AVA_|TSX_|NODE_OPTIONS$)/i.test(key)),
  );
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: cleanEnv(), timeout: 170_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, output: stdout + stderr, ms: Date.now() - started });
    });
  });
}

/** Three fresh packages; `npm install` in the first, whose node_modules the others share (the same dependencies). */
const installed = (async () => {
  const base = await mkdtemp(join(tmpdir(), 'mist-new-npm-'));
  const dirs = {} as Record<PluginKind, string>;
  for (const [kind, name] of [
    ['listener', 'sock'],
    ['command', 'shout'],
    ['authenticator', 'token-file'],
  ] as const) {
    dirs[kind] = join(base, name);
    await scaffold(kind, name, dirs[kind]);
  }
  const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], dirs.command);
  for (const kind of ['listener', 'authenticator'] as const) await symlink(join(dirs.command, 'node_modules'), join(dirs[kind], 'node_modules'), 'dir');
  return { base, dirs, install };
})();
// Started at load: a failing promise is reported by the tests that await it, not as unhandled.
installed.catch(() => {});

test.after.always(async () => {
  const { base } = await installed.catch(() => ({ base: '' }));
  if (base) await rm(base, { recursive: true, force: true });
});

// Serial, so one npm command runs at a time (three ava runs at once would starve the rest of the
// suite on two cores) and each test's timeout covers its own command, not a wait for the others.
test.serial('a generated package installs with npm, taking mist from this checkout', async (t) => {
  t.timeout(180_000);
  const { dirs, install } = await installed;
  t.log(`npm install: ${install.ms} ms`);
  t.is(install.code, 0, install.output);
  t.true(existsSync(join(dirs.command, 'node_modules', 'mist', 'host', 'index.ts')));
});

for (const kind of ['command', 'listener', 'authenticator'] as const) {
  test.serial(`the generated ${kind} package passes its own npm test`, async (t) => {
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
