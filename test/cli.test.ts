/**
 * `mist` and `mist --server`: run in this process through main(), except
 * `--version` and one SIGINT that go through cli/bin.ts, compiled, in a child process.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { tempFolder } from './helpers/files.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { inRepo, source } from './helpers/paths.ts';
import { LineClient } from './helpers/server.ts';
import './helpers/typescript.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

const VERSION = (JSON.parse(readFileSync(inRepo('package.json'), 'utf8')) as { version: string }).version;

/** A TCP server holding a port on 127.0.0.1, closed at teardown. */
async function occupy(t: ExecutionContext): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.destroy());
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { server, port: (server.address() as { port: number }).port };
}

/** A port nobody listens on right now. */
async function freePort(t: ExecutionContext): Promise<number> {
  const { server, port } = await occupy(t);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Connects once something listens on `url`. */
async function connectWhenUp(t: ExecutionContext, url: string, mist: MistCli): Promise<LineClient> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      return await LineClient.connect(t, url);
    } catch (err) {
      if (mist.status) throw new Error(`exited before listening\nstdout: ${mist.stdout}\nstderr: ${mist.stderr}`);
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function assertPong(t: ExecutionContext, client: LineClient): Promise<void> {
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
}

const printsVersion = test.macro({
  async exec(t, flag: string, spawn: boolean) {
    const mist = await MistCli.run(t, [flag], { spawn });
    t.is(mist.status.code, 0);
    t.is(mist.stdout.trim(), VERSION);
  },
  title: (_ = '', flag: string, spawn: boolean) => `${spawn ? 'cli/bin.ts ' : ''}${flag} prints the version from package.json and exits 0`,
});

// The one run of the executable to its end: it sets the exit code.
test(printsVersion, '--version', true);
test(printsVersion, '-v', false);

const printsHelp = test.macro({
  async exec(t, args: string[], expected: RegExp[]) {
    const mist = await MistCli.run(t, args);
    t.is(mist.status.code, 0);
    t.is(mist.stderr, '');
    for (const pattern of expected) t.regex(mist.stdout, pattern);
  },
  title: (_ = '', args: string[]) => `mist ${args.join(' ')} prints its help and exits 0`,
});

const CONNECTION_HELP = [
  /--host HOST\[:PORT\] +the server, over TCP .*\(default 127\.0\.0\.1:1445\)\n/,
  /--url URL +.*\(\$MIST_URL\)\n/,
  /--ca FILE +.*\(\$MIST_CA\)\n/,
  /--insecure +/,
  /--timeout MS +.*\(default 10000; \$MIST_TIMEOUT\)\n/,
  /\nExamples:\n  \S/,
  /\nExit codes: 0 /,
];

test(printsHelp, ['--help'], [/--server +run a server/, /--listeners URI,… .*\(default tcp:\/\/127\.0\.0\.1:1445,http:/, /--config FILE/, /mist tokens list\|register/, /MIST_ADMIN_TOKEN/]);
test(printsHelp, ['--server', '--help'], [/^Usage:\n  mist --server /, /--token T +the admin token.*\(\$MIST_ADMIN_TOKEN\)\n/, /--log-level LEVEL .*\(default INFO\)/, /\nExamples:\n/]);
test(printsHelp, ['ping', '--help'], [/^Usage:\n  mist ping /, /--token T +authenticate with this token \(\$MIST_TOKEN\)\n/, ...CONNECTION_HELP]);
test(printsHelp, ['subscribe', '-h'], [/^Usage:\n  mist subscribe --tags a,b/, /--json +/, ...CONNECTION_HELP]);
test(printsHelp, ['publish', '--help'], [/^Usage:\n  mist publish --tags a,b --data TEXT\|-/, /--data TEXT\|- +.*stdin/, ...CONNECTION_HELP]);
test(printsHelp, ['tokens', '--help'], [
  /^Usage:\n  mist tokens list\n  mist tokens register \[TOKEN\] --tags a,b/,
  /mist tokens unregister TOKEN\n/,
  /--token T +the admin token \(\$MIST_ADMIN_TOKEN; \$MIST_TOKEN\)\n/,
  ...CONNECTION_HELP,
]);
test(printsHelp, ['tokens', 'register', '--help'], [/^Usage:\n  mist tokens list\n/]);
test(printsHelp, ['new', '--help'], [/^Usage:\n  mist new listener\|authenticator\|command NAME \[--dir DIR\]\n/, /--dir DIR +.*\(default mist-plugin-NAME\)/]);
test(printsHelp, ['help', 'publish'], [/^Usage:\n  mist publish /]);
test(printsHelp, ['help'], [/^mist: a tag-based/]);

const badUsage = test.macro({
  async exec(t, args: string[], named: string) {
    const mist = await MistCli.run(t, args);
    t.is(mist.status.code, 2);
    t.true(mist.stderr.startsWith(named), `stderr starts with ${named}: ${mist.stderr}`);
    t.regex(mist.stderr, /\nUsage:\n/);
    t.is(mist.stdout, '');
  },
  title: (what = '') => `${what} exits 2 with a message on stderr`,
});

test('no arguments', badUsage, [], 'mist: nothing to do: give a command, or --server to run a server\n');
test('an unknown command', badUsage, ['frobnicate'], 'mist: unknown command "frobnicate"\n');
test('a mistyped command', badUsage, ['pubish', '--tags', 'a'], 'mist: unknown command "pubish" (did you mean publish?)\n');
test('a mistyped subcommand of tokens', badUsage, ['tokens', 'regster', 'T', '--tags', 'a'], 'mist: unknown tokens command "regster" (did you mean register?)\n');
test('an unknown flag', badUsage, ['--frobnicate'], 'mist: unknown flag --frobnicate\n');
test('a mistyped server flag', badUsage, ['--server', '--listener', 'tcp://127.0.0.1:0'], 'mist: unknown flag --listener (did you mean --listeners?)\n');
test('help for an unknown command', badUsage, ['help', 'frobnicate'], 'mist: unknown command "frobnicate"\n');

const stopsOn = test.macro({
  async exec(t, signal: NodeJS.Signals, spawn: boolean) {
    const dir = await tempFolder(t);
    const mist = MistCli.start(t, ['--server', '--listeners', 'tcp://127.0.0.1:0'], { cwd: dir, spawn });
    const listening = await mist.waitForLog((line) => /^listening on /.test(String(line.msg)), 'the listening line');
    const match = /^listening on tcp:\/\/127\.0\.0\.1:(\d+)$/.exec(String(listening.msg));
    t.truthy(match, String(listening.msg));
    const port = Number(match![1]);
    t.true(port > 0);
    t.is(listening.url, `tcp://127.0.0.1:${port}`);
    t.is(listening.level, 'info');

    await mist.ready();
    const client = await LineClient.connect(t, `tcp://127.0.0.1:${port}`);
    await assertPong(t, client);

    mist.stop(signal);
    t.deepEqual(await mist.exit(), { code: 0, signal: null });
    const messages = mist.logs.map((line) => line.msg);
    t.true(mist.logs.some((line) => line.msg === 'shutting down' && line.signal === signal), mist.stdout);
    t.true(messages.indexOf('closed') > messages.indexOf('shutting down'), 'logs "closed" once shut down');
    await client.waitClosed();
    t.is(mist.stderr, '');
  },
  title: (_ = '', signal: NodeJS.Signals, spawn: boolean) =>
    `${spawn ? 'cli/bin.ts ' : ''}--server on port 0 logs its real port, answers ping over tcp, and exits 0 after logging on ${signal}`,
});

test(stopsOn, 'SIGTERM', false);
// A real signal to a real process: the exit code and the clean stop are the process's.
test(stopsOn, 'SIGINT', true);

test('--log-level WARN suppresses the info lines while the server still works', async (t) => {
  const dir = await tempFolder(t);
  // No listening line to read the port from, so the port is chosen here; another test's server may take it
  // first (then this one exits 2, and the ping may reach the other): a new port, up to three times.
  let mist: MistCli | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const url = `tcp://127.0.0.1:${await freePort(t)}`;
    mist = MistCli.start(t, ['--server', '--listeners', url, '--log-level', 'WARN'], { cwd: dir });
    const client = await connectWhenUp(t, url, mist).catch(() => undefined);
    if (client) await assertPong(t, client);
    if (client && !mist.status) break;
    if (!/cannot listen/.test(mist.stderr) || attempt === 3) return t.fail(`not started: ${mist.stderr}`);
  }
  if (!mist) return;
  mist.stop('SIGTERM');
  t.is((await mist.exit()).code, 0);
  t.false(mist.logs.some((line) => String(line.msg).startsWith('listening on')), mist.stdout);
  t.deepEqual(
    mist.logs.filter((line) => line.level === 'info' || line.level === 'debug'),
    [],
  );
});

test('--log-level DEBUG shows debug lines such as "connection opened"', async (t) => {
  const dir = await tempFolder(t);
  const mist = MistCli.start(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--log-level', 'DEBUG'], { cwd: dir });
  const [url] = await mist.ready();
  const client = await LineClient.connect(t, url!);
  await assertPong(t, client);
  const opened = await mist.waitForLog((line) => line.msg === 'connection opened', '"connection opened"');
  t.is(opened.level, 'debug');
  t.is(opened.transport, 'tcp');
});

const TWO_LISTENERS_YAML = ['listeners:', '  - tcp://127.0.0.1:0', '  - tcp://127.0.0.1:0', 'logLevel: debug', ''].join('\n');

test('a YAML config file in the working directory is discovered and its listeners used', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': TWO_LISTENERS_YAML });
  const mist = MistCli.start(t, ['--server'], { cwd: dir });
  const urls = await mist.ready();
  t.is(urls.length, 2, mist.stdout);
  const loaded = mist.logs.find((line) => line.msg === 'config loaded');
  t.is(loaded?.file, join(dir, 'mist.config.yaml'));
  for (const url of urls) {
    t.notRegex(url, /:(0|1445)$/);
    await assertPong(t, await LineClient.connect(t, url));
  }
});

test('--listeners on the command line overrides the config file and keeps its other keys', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': TWO_LISTENERS_YAML });
  const mist = MistCli.start(t, ['--server', '--listeners', 'tcp://127.0.0.1:0'], { cwd: dir });
  const urls = await mist.ready();
  t.is(urls.length, 1, mist.stdout);
  const client = await LineClient.connect(t, urls[0]!);
  await assertPong(t, client);
  // logLevel: debug still comes from the file.
  await mist.waitForLog((line) => line.msg === 'connection opened', '"connection opened"');
  t.pass();
});

test('--config FILE with JSON is used instead of a discovered file', async (t) => {
  const dir = await tempFolder(t, {
    // Would stop start-up if it were read.
    'mist.config.yaml': 'logLevel: loud\n',
    'etc/mist.json': JSON.stringify({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'DEBUG' }),
  });
  const mist = MistCli.start(t, ['--server', '--config', 'etc/mist.json'], { cwd: dir });
  const urls = await mist.ready();
  t.is(urls.length, 1);
  t.is(mist.logs.find((line) => line.msg === 'config loaded')?.file, join(dir, 'etc/mist.json'));
  await assertPong(t, await LineClient.connect(t, urls[0]!));
  await mist.waitForLog((line) => line.msg === 'connection opened', '"connection opened"');
  t.pass();
});

test("a plugin listed in the config file is loaded from the file's folder and its command served", async (t) => {
  const core = source('host/index.ts');
  const dir = await tempFolder(t, {
    'package.json': JSON.stringify({ name: 'app', type: 'module' }),
    'mist.config.yaml': ['listeners: [tcp://127.0.0.1:0]', 'plugins:', '  - module: ./plugins/shout.ts', '    options: { suffix: "!" }', ''].join('\n'),
    'plugins/shout.ts': [
      `import { command, definePlugin, type Message, type Request } from '${core}';`,
      'export default definePlugin<{ suffix: string }>({',
      "  name: 'shout',",
      '  register(api, options) {',
      '    class Shout {',
      "      @command('shout')",
      '      shout(request: Request): Message {',
      "        return { command: 'shout', data: String(request.data).toUpperCase() + options.suffix };",
      '      }',
      '    }',
      '    api.commands.add(Shout);',
      '  },',
      '});',
      '',
    ].join('\n'),
  });
  const mist = MistCli.start(t, ['--server'], { cwd: dir });
  const [url] = await mist.ready();
  const client = await LineClient.connect(t, url!);
  t.deepEqual(await client.request({ command: 'shout', data: 'hello' }), { command: 'shout', data: 'HELLO!' });
});

const invalidConfig = test.macro({
  async exec(t, file: string, content: string, key: string, args: string[] = []) {
    const dir = await tempFolder(t, { [file]: content });
    const mist = await MistCli.run(t, ['--server', ...args], { cwd: dir });
    t.is(mist.status.code, 2);
    t.true(mist.stderr.includes(join(dir, file)), `stderr names the file: ${mist.stderr}`);
    t.true(mist.stderr.includes(key), `stderr names ${key}: ${mist.stderr}`);
    t.false(mist.stdout.includes('listening on'));
  },
  title: (what = '') => `an invalid config (${what}) exits 2 naming the file and the key`,
});

test('a negative limit in a discovered YAML file', invalidConfig, 'mist.config.yaml', 'limits:\n  maxTags: -1\n', 'limits.maxTags');
test(
  'an unknown key in a --config JSON file',
  invalidConfig,
  'conf/mist.json',
  JSON.stringify({ listener: ['tcp://127.0.0.1:0'] }),
  'listener',
  ['--config', 'conf/mist.json'],
);

test('a bad --log-level exits 2 naming --log-level', async (t) => {
  const dir = await tempFolder(t);
  const mist = await MistCli.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--log-level', 'loud'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.regex(mist.stderr, /--log-level/);
});

const badListeners = test.macro({
  async exec(t, listeners: string, message: string) {
    const mist = await MistCli.run(t, ['--server', '--listeners', listeners], { cwd: await tempFolder(t) });
    t.is(mist.status.code, 2);
    t.is(mist.stderr, `mist: ${message}\n`);
    t.is(mist.stdout, '');
  },
  title: (what = '') => `--listeners with ${what} exits 2 naming the listener and what is wrong, binding nothing`,
});

test('a port out of range', badListeners, 'tcp://127.0.0.1:0,ws://127.0.0.1:99999', '--listeners "ws://127.0.0.1:99999": port 99999 is out of range (0 to 65535)');
test('a trailing comma', badListeners, 'tcp://127.0.0.1:0,', '--listeners entry 2 of 2 is empty (a stray comma?)');
test('an empty entry', badListeners, 'tcp://127.0.0.1:0,,ws://127.0.0.1:0', '--listeners entry 2 of 3 is empty (a stray comma?)');
test('no // after the scheme', badListeners, 'tcp:127.0.0.1:0', '--listeners "tcp:127.0.0.1:0": expected scheme://host:port');

test('a listener port out of range in the config file exits 2 naming the file, the listener and the range', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners:\n  - tcp://127.0.0.1:0\n  - tls://127.0.0.1:65536\n' });
  const mist = await MistCli.run(t, ['--server'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.is(mist.stderr, `mist: ${join(dir, 'mist.config.yaml')}: listeners "tls://127.0.0.1:65536": port 65536 is out of range (0 to 65535)\n`);
});

test('an authenticator URI with a port out of range exits 2 saying so, its password hidden', async (t) => {
  const dir = await tempFolder(t);
  const args = ['--server', '--listeners', 'tcp://127.0.0.1:0', '--authenticator', 'postgres://mist:s3cret@127.0.0.1:123456?db=x', '--token', 'x'];
  const mist = await MistCli.run(t, args, { cwd: dir });
  t.is(mist.status.code, 2);
  t.is(mist.stderr, 'mist: invalid authenticator URI "postgres://mist:***@127.0.0.1:123456?db=x": port 123456 is out of range (0 to 65535)\n');
});

test('$MIST_ADMIN_TOKEN gives the server its admin token when --token is not given', async (t) => {
  const dir = await tempFolder(t);
  const mist = MistCli.start(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--authenticator', 'memory://'], {
    cwd: dir,
    env: { MIST_ADMIN_TOKEN: 'from-env' },
  });
  const [url] = await mist.ready();
  const client = await LineClient.connect(t, url!);
  t.deepEqual(await client.request({ command: 'auth', data: 'from-env' }), { command: 'auth', data: 'success' });
  t.deepEqual(await client.request({ command: 'who' }), { command: 'who', data: JSON.stringify({ connections: 1, total: 1, subscriptions: 0 }) });
});

test('an unknown listener scheme exits 2 naming it and the known schemes, binding nothing', async (t) => {
  const dir = await tempFolder(t);
  const mist = await MistCli.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0,foo://127.0.0.1:0'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.regex(mist.stderr, /"foo"/);
  t.regex(mist.stderr, /known: http, https, tcp, tls, ws, wss/);
  t.false(mist.stdout.includes('listening on'), mist.stdout);
});

test('an unknown listener scheme in the config file exits 2 naming the scheme and the file', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners:\n  - udp://127.0.0.1:0\n' });
  const mist = await MistCli.run(t, ['--server'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.regex(mist.stderr, /"udp"/);
  t.true(mist.stderr.includes(`${join(dir, 'mist.config.yaml')}: listeners`), mist.stderr);
});

test('a port already in use exits non-zero naming the URI', async (t) => {
  const dir = await tempFolder(t);
  const { port } = await occupy(t);
  const url = `tcp://127.0.0.1:${port}`;
  const mist = await MistCli.run(t, ['--server', '--listeners', url], { cwd: dir });
  t.true(mist.status.code !== null && mist.status.code !== 0, `exit code ${mist.status.code}`);
  t.true(mist.stderr.includes(url), mist.stderr);
  t.false(mist.logs.some((line) => line.msg === 'mist is ready'));
});

test('--authenticator without --token exits 2 with a clear message, binding nothing', async (t) => {
  const dir = await tempFolder(t);
  const mist = await MistCli.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--authenticator', 'memory://'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.regex(mist.stderr, /authenticator needs an admin token/);
  t.false(mist.stdout.includes('listening on'), mist.stdout);
});

test('an unknown authenticator scheme in the config file exits 2 naming the file and key', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'authenticator: nope://x\ntoken: t\nlisteners: [tcp://127.0.0.1:0]\n' });
  const mist = await MistCli.run(t, ['--server'], { cwd: dir });
  t.is(mist.status.code, 2);
  t.true(mist.stderr.includes(`${join(dir, 'mist.config.yaml')}: authenticator`), mist.stderr);
});
