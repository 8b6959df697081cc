import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { tempFolder } from './helpers/files.ts';
import { LineClient } from './helpers/server.ts';
import { Wakeup } from './helpers/wakeup.ts';

const BIN = fileURLToPath(new URL('../bin/mist.js', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Generous: the machine is slow and shared, and each child starts node and tsx. */
const WAIT_MS = 40_000;

type LogLine = Record<string, unknown>;

/** `node bin/mist.js …` as a child process; killed at teardown if still running. */
class Mist {
  stdout = '';
  stderr = '';
  done = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly wakeup = new Wakeup();

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      this.stdout += text;
      this.wake();
    });
    child.stderr!.on('data', (text: string) => {
      this.stderr += text;
      this.wake();
    });
    // 'close' comes after the output streams end, so nothing written is missed.
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.done = true;
        this.wake();
        resolve({ code, signal });
      });
    });
  }

  static run(t: ExecutionContext, args: string[], cwd = REPO): Mist {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const mist = new Mist(child);
    child.on('error', (err) => {
      mist.stderr += `spawn failed: ${err.message}\n`;
    });
    t.teardown(async () => {
      if (mist.done) return;
      child.kill('SIGKILL');
      await mist.exited;
    });
    return mist;
  }

  /** The JSON log lines written to stdout so far. */
  get logs(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      });
  }

  /** The first log line `match` accepts, waiting for it to be written. */
  async waitForLog(match: (line: LogLine) => boolean, what: string): Promise<LogLine> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const line = this.logs.find(match);
      if (line) return line;
      if (this.done) throw new Error(`exited before logging ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${what} logged\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await this.wakeup.wait(deadline);
    }
  }

  /** Waits for the process to end (killing it is the caller's business). */
  async exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const deadline = Date.now() + WAIT_MS;
    while (!this.done) {
      if (Date.now() > deadline) throw new Error(`still running\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await this.wakeup.wait(deadline);
    }
    return this.exited;
  }

  /** Waits until the server is up and handling signals, and returns its TCP URLs. */
  async ready(): Promise<string[]> {
    await this.waitForLog((line) => line.msg === 'mist is ready', '"mist is ready"');
    return this.logs.flatMap((line) => (typeof line.url === 'string' && line.msg === `listening on ${line.url}` ? [line.url] : []));
  }

  private wake(): void {
    this.wakeup.wake();
  }
}


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
async function connectWhenUp(t: ExecutionContext, url: string, mist: Mist): Promise<LineClient> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      return await LineClient.connect(t, url);
    } catch (err) {
      if (mist.done) throw new Error(`exited before listening\nstdout: ${mist.stdout}\nstderr: ${mist.stderr}`);
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function assertPong(t: ExecutionContext, client: LineClient): Promise<void> {
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
}

const printsVersion = test.macro({
  async exec(t, flag: string) {
    const mist = Mist.run(t, [flag]);
    const { code } = await mist.exit();
    t.is(code, 0);
    t.is(mist.stdout.trim(), VERSION);
  },
  title: (_ = '', flag: string) => `${flag} prints the version from package.json and exits 0`,
});

test(printsVersion, '--version');
test(printsVersion, '-v');

test('--help prints the usage and exits 0', async (t) => {
  const mist = Mist.run(t, ['--help']);
  const { code } = await mist.exit();
  t.is(code, 0);
  t.regex(mist.stdout, /--server/);
  t.regex(mist.stdout, /--listeners/);
  t.regex(mist.stdout, /--config/);
});

const badUsage = test.macro({
  async exec(t, args: string[], named: string) {
    const mist = Mist.run(t, args);
    const { code } = await mist.exit();
    t.is(code, 2);
    t.true(mist.stderr.includes(named), `stderr names ${named}: ${mist.stderr}`);
    t.regex(mist.stderr, /Usage/);
    t.is(mist.stdout, '');
  },
  title: (what = '') => `${what} exits 2 with a message on stderr`,
});

test('no arguments', badUsage, [], 'nothing to do');
test('an unknown command', badUsage, ['frobnicate'], 'frobnicate');
test('an unknown flag', badUsage, ['--frobnicate'], '--frobnicate');

const stopsOn = test.macro({
  async exec(t, signal: NodeJS.Signals) {
    const dir = await tempFolder(t);
    const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0'], dir);
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

    mist.child.kill(signal);
    t.deepEqual(await mist.exit(), { code: 0, signal: null });
    const messages = mist.logs.map((line) => line.msg);
    t.true(mist.logs.some((line) => line.msg === 'shutting down' && line.signal === signal), mist.stdout);
    t.true(messages.indexOf('closed') > messages.indexOf('shutting down'), 'logs "closed" once shut down');
    await client.waitClosed();
    t.is(mist.stderr, '');
  },
  title: (_ = '', signal: NodeJS.Signals) =>
    `--server on port 0 logs its real port, answers ping over tcp, and exits 0 after logging on ${signal}`,
});

test(stopsOn, 'SIGTERM');
test(stopsOn, 'SIGINT');

test('--log-level WARN suppresses the info lines while the server still works', async (t) => {
  const dir = await tempFolder(t);
  // No listening line to read the port from, so the port is chosen here.
  const url = `tcp://127.0.0.1:${await freePort(t)}`;
  const mist = Mist.run(t, ['--server', '--listeners', url, '--log-level', 'WARN'], dir);
  const client = await connectWhenUp(t, url, mist);
  await assertPong(t, client);
  mist.child.kill('SIGTERM');
  t.is((await mist.exit()).code, 0);
  t.false(mist.logs.some((line) => String(line.msg).startsWith('listening on')), mist.stdout);
  t.deepEqual(
    mist.logs.filter((line) => line.level === 'info' || line.level === 'debug'),
    [],
  );
});

test('--log-level DEBUG shows debug lines such as "connection opened"', async (t) => {
  const dir = await tempFolder(t);
  const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--log-level', 'DEBUG'], dir);
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
  const mist = Mist.run(t, ['--server'], dir);
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
  const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0'], dir);
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
  const mist = Mist.run(t, ['--server', '--config', 'etc/mist.json'], dir);
  const urls = await mist.ready();
  t.is(urls.length, 1);
  t.is(mist.logs.find((line) => line.msg === 'config loaded')?.file, join(dir, 'etc/mist.json'));
  await assertPong(t, await LineClient.connect(t, urls[0]!));
  await mist.waitForLog((line) => line.msg === 'connection opened', '"connection opened"');
  t.pass();
});

test("a plugin listed in the config file is loaded from the file's folder and its command served", async (t) => {
  const core = new URL('../host/index.ts', import.meta.url).href;
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
  const mist = Mist.run(t, ['--server'], dir);
  const [url] = await mist.ready();
  const client = await LineClient.connect(t, url!);
  t.deepEqual(await client.request({ command: 'shout', data: 'hello' }), { command: 'shout', data: 'HELLO!' });
});

const invalidConfig = test.macro({
  async exec(t, file: string, content: string, key: string, args: string[] = []) {
    const dir = await tempFolder(t, { [file]: content });
    const mist = Mist.run(t, ['--server', ...args], dir);
    const { code } = await mist.exit();
    t.is(code, 2);
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
  const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--log-level', 'loud'], dir);
  t.is((await mist.exit()).code, 2);
  t.regex(mist.stderr, /--log-level/);
});

test('an unknown listener scheme exits 2 naming it and the known schemes, binding nothing', async (t) => {
  const dir = await tempFolder(t);
  const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0,foo://127.0.0.1:0'], dir);
  const { code } = await mist.exit();
  t.is(code, 2);
  t.regex(mist.stderr, /"foo"/);
  t.regex(mist.stderr, /known: http, https, tcp, tls, ws, wss/);
  t.false(mist.stdout.includes('listening on'), mist.stdout);
});

test('an unknown listener scheme in the config file exits 2 naming the scheme and the file', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners:\n  - udp://127.0.0.1:0\n' });
  const mist = Mist.run(t, ['--server'], dir);
  t.is((await mist.exit()).code, 2);
  t.regex(mist.stderr, /"udp"/);
  t.true(mist.stderr.includes(`${join(dir, 'mist.config.yaml')}: listeners`), mist.stderr);
});

test('a port already in use exits non-zero naming the URI', async (t) => {
  const dir = await tempFolder(t);
  const { port } = await occupy(t);
  const url = `tcp://127.0.0.1:${port}`;
  const mist = Mist.run(t, ['--server', '--listeners', url], dir);
  const { code } = await mist.exit();
  t.true(code !== null && code !== 0, `exit code ${code}`);
  t.true(mist.stderr.includes(url), mist.stderr);
  t.false(mist.logs.some((line) => line.msg === 'mist is ready'));
});

test('--authenticator without --token exits 2 with a clear message, binding nothing', async (t) => {
  const dir = await tempFolder(t);
  const mist = Mist.run(t, ['--server', '--listeners', 'tcp://127.0.0.1:0', '--authenticator', 'memory://'], dir);
  t.is((await mist.exit()).code, 2);
  t.regex(mist.stderr, /authenticator needs an admin token/);
  t.false(mist.stdout.includes('listening on'), mist.stdout);
});

test('an unknown authenticator scheme in the config file exits 2 naming the file and key', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'authenticator: nope://x\ntoken: t\nlisteners: [tcp://127.0.0.1:0]\n' });
  const mist = Mist.run(t, ['--server'], dir);
  t.is((await mist.exit()).code, 2);
  t.true(mist.stderr.includes(`${join(dir, 'mist.config.yaml')}: authenticator`), mist.stderr);
});
