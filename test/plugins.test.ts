import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { ErrorCodes, MistError, type ErrorCode } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { SchemeRegistry } from '../host/registry.ts';
import { MistServer } from '../host/server.ts';
import { builtinPlugins } from '../plugins/preset.ts';
import { REPO, source } from './helpers/paths.ts';
import { eventually, LineClient, logCapture, startTestServer, type LogLines, withoutId } from './helpers/server.ts';
import './helpers/typescript.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

const CORE = source('host/index.ts');

/**
 * Plugin modules as a third party would write them: outside the repository,
 * importing mist by its entry point's file URL.
 */
const PLUGINS: Record<string, string> = {
  // The temp folder is an ES module package, as a plugin author's would be.
  'package.json': JSON.stringify({ type: 'module' }),

  'echo.plugin.ts': `
import { command, CommandError, definePlugin, type Message, type Request } from '${CORE}';

class EchoCommands {
  @command('echo')
  echo(request: Request): Message {
    return { command: 'echo', tags: request.tags, data: request.data as string };
  }

  @command('secret', { role: 'admin' })
  secret(): Message {
    return { command: 'secret', data: 'for admins only' };
  }

  @command('tagged', { tags: 'required' })
  tagged(request: Request): Message {
    return { command: 'tagged', tags: request.tags, data: 'ok' };
  }

  @command('anything', { data: 'any' })
  anything(request: Request): Message {
    return { command: 'anything', data: JSON.stringify(request.data) };
  }

  /** Its tags label the reply; they are not the connection's to use, so they are not checked against its token. */
  @command('label', { checkTags: false })
  label(request: Request): Message {
    return { command: 'label', tags: request.tags, data: 'labelled' };
  }

  @command('refuse')
  refuse(): Message {
    throw new CommandError('nope');
  }

  @command('crash')
  crash(): Message {
    throw new Error('a bug in the handler');
  }

  @command('slow')
  async slow(): Promise<Message> {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { command: 'slow', data: 'done' };
  }
}

export default definePlugin({
  name: 'echo-plugin',
  register(api) {
    api.commands.add(EchoCommands);
  },
});
`,

  'stats.plugin.ts': `
import { command, definePlugin, type Message } from '${CORE}';

export default definePlugin({
  name: 'stats-plugin',
  register(api) {
    const broker = api.broker;
    class StatsCommands {
      @command('stats')
      stats(): Message {
        return { command: 'stats', data: String(broker.stats.published) };
      }
    }
    api.commands.add(StatsCommands);
  },
});
`,

  // The style docs/plugins.md shows: services from the api handed to a command class's constructor, from a file outside the repository.
  'services.plugin.ts': `
import { command, definePlugin, type BrokerService, type Connection, type Logger, type Message, type Request } from '${CORE}';

class PublishedCommands {
  constructor(
    private readonly broker: BrokerService,
    private readonly logger: Logger,
  ) {}

  @command('published')
  published(): Message {
    return { command: 'published', data: String(this.broker.stats.published) };
  }

  /** Subscribes after an await, as a permission check against a database would. */
  @command('late-subscribe', { tags: 'required' })
  async lateSubscribe(request: Request, connection: Connection): Promise<Message> {
    this.logger.info('late subscribe started');
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.broker.subscribe(connection, request.tags);
    this.logger.info('late subscribe done');
    return { command: 'late-subscribe', data: 'success' };
  }
}

export default definePlugin({
  name: 'services-plugin',
  register(api) {
    api.commands.add(new PublishedCommands(api.broker, api.logger));
  },
});
`,

  // A class whose constructor wants a service, added as a class: mist has nothing to make it with.
  'injected-class.plugin.ts': `
import { command, definePlugin, type BrokerService, type Message } from '${CORE}';

class NeedsBroker {
  constructor(private readonly broker: BrokerService) {}

  @command('count')
  count(): Message {
    return { command: 'count', data: String(this.broker.subscriptionCount) };
  }
}

export default definePlugin({
  name: 'injected-class',
  register(api) {
    api.commands.add(NeedsBroker);
  },
});
`,

  'options.plugin.ts': `
import { command, definePlugin, type Message } from '${CORE}';

export default definePlugin<unknown>({
  name: 'options-plugin',
  register(api, options) {
    class OptionsCommands {
      @command('options')
      options(): Message {
        return { command: 'options', data: JSON.stringify(options ?? null) };
      }
    }
    api.commands.add(OptionsCommands);
  },
});
`,

  'null-listener.plugin.ts': `
import { definePlugin } from '${CORE}';

export default definePlugin({
  name: 'null-listener',
  register(api) {
    api.listeners.register('null', (url) => ({ url: url.href, listen: async () => {}, close: async () => {} }));
  },
});
`,

  'duplicate-ping.plugin.ts': `
import { command, definePlugin, type Message } from '${CORE}';

class MyPing {
  @command('ping')
  ping(): Message {
    return { command: 'ping', data: 'mine' };
  }
}

export default definePlugin({
  name: 'my-ping',
  register(api) {
    api.commands.add(MyPing);
  },
});
`,

  'duplicate-tcp.plugin.ts': `
import { definePlugin } from '${CORE}';

export default definePlugin({
  name: 'my-tcp',
  register(api) {
    api.listeners.register('tcp', (url) => ({ url: url.href, listen: async () => {}, close: async () => {} }));
  },
});
`,

  'throws.plugin.ts': `
import { definePlugin } from '${CORE}';

export default definePlugin({
  name: 'throwing-plugin',
  register() {
    throw new Error('the database is down');
  },
});
`,

  'no-default.plugin.ts': `export const name = 'not-a-plugin';\nexport function register() {}\n`,
  'no-register.plugin.ts': `export default { name: 'half-a-plugin' };\n`,
  'function-default.plugin.ts': `export default function register() {}\n`,
  'syntax-error.plugin.ts': `export default {{{ name: 'broken' };\n`,
};

let fixtures = '';

test.before(async () => {
  fixtures = await mkdtemp(join(tmpdir(), 'mist-plugins-'));
  for (const [name, content] of Object.entries(PLUGINS)) await writeFile(join(fixtures, name), content);
});

test.after.always(async () => {
  if (fixtures) await rm(fixtures, { recursive: true, force: true });
});


/** A server on a free port whose relative plugin paths resolve from the fixtures folder, as from a config file's. */
function serverWith(t: ExecutionContext, config: ConfigFile): { server: MistServer; logs: LogLines } {
  const logs: LogLines = [];
  const full = buildConfig({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'DEBUG', ...config }, fixtures, join(fixtures, 'mist.config.yaml'));
  const server = new MistServer(full, { logger: createLogger(full.logLevel, logCapture(logs)), plugins: builtinPlugins });
  t.teardown(() => server.close());
  return { server, logs };
}

async function startWith(t: ExecutionContext, config: ConfigFile): Promise<{ server: MistServer; logs: LogLines; client: LineClient }> {
  const { server, logs } = serverWith(t, config);
  await server.start();
  const client = await LineClient.connect(t, server.url('tcp'));
  return { server, logs, client };
}

/** Start-up fails with `code`; afterwards the server is closed and nothing listens. Returns the message. */
async function failsToStart(t: ExecutionContext, config: ConfigFile, code: ErrorCode): Promise<string> {
  const { server, logs } = serverWith(t, config);
  const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
  t.is(error?.code, code, error?.message);
  t.is(server.state, 'closed');
  t.deepEqual(server.urls, []);
  t.false(
    logs.some((line) => String(line.msg).startsWith('listening on')),
    'nothing was bound',
  );
  return error?.message ?? '';
}

/** Resolves true if something accepts connections at `port`, false if refused. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('a plugin listed by relative path registers a decorated command that a tcp client can use', async (t) => {
  const { server, client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  t.deepEqual(await client.request({ command: 'echo', tags: ['a'], data: 'hello' }), { command: 'echo', tags: ['a'], data: 'hello' });
  await client.sync();
  t.is(server.dispatcher.errors, 0);
});

test('a plugin given by absolute path works with startTestServer', async (t) => {
  const { server } = await startTestServer(t, { plugins: [join(fixtures, 'echo.plugin.ts')] });
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'echo', data: 'hi' }), { command: 'echo', tags: [], data: 'hi' });
});

test('the same plugin module serves several servers in one process', async (t) => {
  const first = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  const second = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  t.deepEqual(await first.client.request({ command: 'echo', data: '1' }), { command: 'echo', tags: [], data: '1' });
  t.deepEqual(await second.client.request({ command: 'echo', data: '2' }), { command: 'echo', tags: [], data: '2' });
  t.deepEqual(await second.client.request({ command: 'refuse' }), { command: 'refuse', error: 'nope' });
});

test("a command declared { role: 'admin' } is refused to a normal connection, which stays usable", async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  const reply = await client.request({ command: 'secret' });
  t.is(reply.command, 'secret');
  t.regex(String(reply.error), /admin/);
  t.is(reply.data, undefined);
  await client.sync();
});

test("a command declared { tags: 'required' } refuses a request without tags and runs one with tags", async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  const refused = await client.request({ command: 'tagged' });
  t.is(refused.command, 'tagged');
  t.regex(String(refused.error), /tag/);
  t.deepEqual(await client.request({ command: 'tagged', tags: [] }), refused);
  t.deepEqual(await client.request({ command: 'tagged', tags: ['x'] }), { command: 'tagged', tags: ['x'], data: 'ok' });
});

test("a plugin command's tags are checked against a limited token by default; one declared { checkTags: false } is not", async (t) => {
  const { server, client: admin } = await startWith(t, { plugins: ['./echo.plugin.ts'], authenticator: 'memory://', token: 'admin-secret' });
  t.is((await admin.request({ command: 'auth', data: 'admin-secret' })).data, 'success');
  t.is((await admin.request({ command: 'register', tags: ['news', 'sports'], data: 'reader-token' })).data, 'success');
  const reader = await LineClient.connect(t, server.url('tcp'));
  t.is((await reader.request({ command: 'auth', data: 'reader-token' })).data, 'success');
  t.deepEqual(await reader.request({ command: 'echo', tags: ['forbidden'], data: 'x' }), { command: 'echo', error: 'not permitted to use tags: forbidden' });
  t.deepEqual(await reader.request({ command: 'echo', tags: ['news', 'other'], data: 'x' }), { command: 'echo', error: 'not permitted to use tags: other' });
  t.deepEqual(await reader.request({ command: 'echo', tags: ['news'], data: 'x' }), { command: 'echo', tags: ['news'], data: 'x' });
  t.deepEqual(await reader.request({ command: 'echo', data: 'no tags, nothing to check' }), { command: 'echo', tags: [], data: 'no tags, nothing to check' });
  t.deepEqual(await reader.request({ command: 'label', tags: ['forbidden'] }), { command: 'label', tags: ['forbidden'], data: 'labelled' });
  t.deepEqual(await admin.request({ command: 'echo', tags: ['forbidden'], data: 'x' }), { command: 'echo', tags: ['forbidden'], data: 'x' }, 'the admin may use any tag');
});

test("a command declared { data: 'any' } accepts any JSON data, while the default accepts strings only", async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  const data = { nested: [1, true, null, 'x'] };
  t.deepEqual(await client.request({ command: 'anything', data }), { command: 'anything', data: JSON.stringify(data) });
  t.deepEqual(await client.request({ command: 'anything', data: 42 }), { command: 'anything', data: '42' });
  const refused = await client.request({ command: 'echo', data: { not: 'a string' } });
  t.is(refused.command, 'echo');
  t.regex(String(refused.error), /data/);
  t.deepEqual(await client.request({ command: 'echo', data: 'a string' }), { command: 'echo', tags: [], data: 'a string' });
});

test('a handler that throws CommandError replies its message as the error, and the connection keeps working', async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  t.deepEqual(await client.request({ command: 'refuse' }), { command: 'refuse', error: 'nope' });
  t.deepEqual(await client.request({ command: 'echo', data: 'still here' }), { command: 'echo', tags: [], data: 'still here' });
});

test('a handler that throws a plain Error replies "internal error", logs an error line, and the connection keeps working', async (t) => {
  const { client, logs } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  t.deepEqual(await client.request({ command: 'crash' }), { command: 'crash', error: 'internal error' });
  const logged = logs.find((line) => line.level === 'error' && line.command === 'crash');
  t.truthy(logged, JSON.stringify(logs));
  t.regex(JSON.stringify(logged), /a bug in the handler/);
  await client.sync();
  t.deepEqual(await client.request({ command: 'echo', data: 'after' }), { command: 'echo', tags: [], data: 'after' });
});

test('an async handler followed by ping in the same tcp write gets its reply first', async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  client.write('{"command":"slow"}\n{"command":"ping"}\n{"command":"echo","data":"third"}\n');
  t.deepEqual(await client.next(), { command: 'slow', data: 'done' });
  t.deepEqual(await client.next(), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await client.next(), { command: 'echo', tags: [], data: 'third' });
});

test('plugin options from the config reach register', async (t) => {
  const options = { greeting: 'hello', every: 10, nested: { on: true } };
  const { client } = await startWith(t, { plugins: [{ module: './options.plugin.ts', options }] });
  t.deepEqual(await client.request({ command: 'options' }), { command: 'options', data: JSON.stringify(options) });
});

test('a plugin listed as a plain string gets no options', async (t) => {
  const { client } = await startWith(t, { plugins: ['./options.plugin.ts'] });
  t.deepEqual(await client.request({ command: 'options' }), { command: 'options', data: 'null' });
});

test("a plugin reads the broker's figures from api.broker in a command", async (t) => {
  const { client } = await startWith(t, { plugins: ['./stats.plugin.ts'] });
  t.deepEqual(await client.request({ command: 'stats' }), { command: 'stats', data: '0' });
  client.send({ command: 'publish', tags: ['a'], data: 'one' });
  client.send({ command: 'publish', tags: ['a', 'b'], data: 'two' });
  t.deepEqual(await client.request({ command: 'stats' }), { command: 'stats', data: '2' });
});

test('a plugin outside the repository hands the services of its api to the constructor of its commands', async (t) => {
  const { client } = await startWith(t, { plugins: ['./services.plugin.ts'] });
  client.send({ command: 'publish', tags: ['a'], data: 'one' });
  t.deepEqual(await client.request({ command: 'published' }), { command: 'published', data: '1' });
});

test('an asynchronous subscribe that finishes after its connection closed leaves no subscription behind', async (t) => {
  const { server, logs, client } = await startWith(t, { plugins: ['./services.plugin.ts'] });
  client.send({ command: 'late-subscribe', tags: ['late'] });
  await eventually(() => logs.some((line) => line.msg === 'late subscribe started'), WAIT_MS, 'the handler started');
  // Closing the server closes the connection while the handler awaits (a paused socket would not see the client go).
  await server.close();
  t.is(server.connections.count, 0);
  await eventually(() => logs.some((line) => line.msg === 'late subscribe done'), WAIT_MS, 'the handler finished');
  t.is(server.broker.subscriptionCount, 0);
});

test('a client that half-closes right after an async command and a ping still gets both replies, then the server closes', async (t) => {
  const { client } = await startWith(t, { plugins: ['./echo.plugin.ts'] });
  client.socket.end('{"command":"slow"}\n{"command":"ping"}\n');
  t.deepEqual(await client.next(), { command: 'slow', data: 'done' });
  t.deepEqual(await client.next(), { command: 'ping', tags: [], data: 'pong' });
  await client.waitClosed();
});

test('an over-long line behind an async command waits its turn: the replies before it come first, then the error and the close', async (t) => {
  const { server: base } = serverWith(t, { plugins: ['./echo.plugin.ts'], limits: { maxMessageBytes: 200 } });
  await base.start();
  const subscriber = await LineClient.connect(t, base.url('tcp'));
  t.like(await subscriber.request({ command: 'subscribe', tags: ['q'] }), { data: 'success' });
  const client = await LineClient.connect(t, base.url('tcp'));
  client.write('{"command":"slow"}\n{"command":"publish","tags":["q"],"data":"queued"}\n{"command":"ping"}\n' + 'x'.repeat(300) + '\n');
  t.deepEqual(await client.next(), { command: 'slow', data: 'done' });
  t.deepEqual(await client.next(), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await client.next(), { command: 'error', error: 'message too long: over 200 bytes' });
  await client.waitClosed();
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['q'], data: 'queued' });
});

test('a plugin declaring a command that exists (ping) fails start-up naming both plugins', async (t) => {
  const message = await failsToStart(t, { plugins: ['./duplicate-ping.plugin.ts'] }, ErrorCodes.DUPLICATE_COMMAND);
  t.regex(message, /"ping"/);
  t.regex(message, /basic-commands/);
  t.regex(message, /my-ping/);
});

test('a plugin registering the tcp listener scheme again fails start-up naming both plugins', async (t) => {
  const message = await failsToStart(t, { plugins: ['./duplicate-tcp.plugin.ts'] }, ErrorCodes.DUPLICATE_SCHEME);
  t.regex(message, /"tcp"/);
  t.regex(message, /plugin "tcp"/);
  t.regex(message, /my-tcp/);
});

const notAPlugin = test.macro({
  async exec(t, file: string) {
    const message = await failsToStart(t, { plugins: [`./${file}`] }, ErrorCodes.PLUGIN);
    t.true(message.includes(file), message);
  },
  title: (what = '') => `a module ${what} fails start-up with MIST_ERR_PLUGIN naming it`,
});

test('without a default export', notAPlugin, 'no-default.plugin.ts');
test('whose default export has no register', notAPlugin, 'no-register.plugin.ts');
test('whose default export is a bare function', notAPlugin, 'function-default.plugin.ts');
test('that does not compile', notAPlugin, 'syntax-error.plugin.ts');
test('that does not exist', notAPlugin, 'missing.plugin.ts');

test('a missing npm package named as a plugin fails start-up with MIST_ERR_PLUGIN naming it', async (t) => {
  const message = await failsToStart(t, { plugins: ['mist-plugin-that-does-not-exist'] }, ErrorCodes.PLUGIN);
  t.regex(message, /mist-plugin-that-does-not-exist/);
});

test('a command class whose constructor takes arguments, added as a class, fails start-up saying to add an object', async (t) => {
  const message = await failsToStart(t, { plugins: ['./injected-class.plugin.ts'] }, ErrorCodes.PLUGIN);
  t.is(message, 'plugin "injected-class" added the class NeedsBroker, whose constructor takes arguments: add an object made from it instead');
});

test('a plugin whose register throws fails start-up naming the plugin and the cause', async (t) => {
  const message = await failsToStart(t, { plugins: ['./throws.plugin.ts'] }, ErrorCodes.PLUGIN);
  t.regex(message, /throwing-plugin/);
  t.regex(message, /the database is down/);
});

test('an unknown listener scheme fails start-up before anything is bound, naming the schemes plugins registered', async (t) => {
  const message = await failsToStart(
    t,
    { listeners: ['tcp://127.0.0.1:0', 'foo://127.0.0.1:0'], plugins: ['./null-listener.plugin.ts'] },
    ErrorCodes.UNKNOWN_SCHEME,
  );
  t.regex(message, /"foo"/);
  t.regex(message, /known: http, https, null, tcp, tls, ws, wss/);
});

test('a scheme registered by a plugin serves listeners from the config', async (t) => {
  const { server } = serverWith(t, { listeners: ['tcp://127.0.0.1:0', 'null://nowhere:1'], plugins: ['./null-listener.plugin.ts'] });
  await server.start();
  t.is(server.state, 'running');
  t.is(server.url('null'), 'null://nowhere:1');
});

test('when a later listener cannot bind, the ones already bound are closed again', async (t) => {
  const holder = createServer();
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const taken = (holder.address() as { port: number }).port;

  const { server, logs } = serverWith(t, { listeners: ['tcp://127.0.0.1:0', `tcp://127.0.0.1:${taken}`] });
  const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.LISTEN);
  t.true(error?.message.includes(`tcp://127.0.0.1:${taken}`), error?.message);
  t.is(server.state, 'closed');
  const first = logs.find((line) => String(line.msg).startsWith('listening on'));
  const port = Number(new URL(String(first?.url)).port);
  t.true(port > 0);
  t.false(await accepts(port), 'the first listener no longer accepts connections');
});

test('SchemeRegistry.resolve of an invalid URI fails with MIST_ERR_CONFIG naming it', (t) => {
  const registry = new SchemeRegistry<string>('listener');
  registry.register('tcp', 'tcp factory', 'tcp');
  const error = t.throws(() => registry.resolve('not a uri'), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.CONFIG);
  t.regex(error?.message ?? '', /"not a uri"/);
  t.regex(error?.message ?? '', /listener/);
});

test('SchemeRegistry.resolve of an unknown scheme lists the known ones, sorted', (t) => {
  const registry = new SchemeRegistry<string>('authenticator');
  registry.register('scribble', 'scribble factory', 'scribble');
  registry.register('memory', 'memory factory', 'memory');
  const error = t.throws(() => registry.resolve('postgres://db:5432'), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.UNKNOWN_SCHEME);
  t.regex(error?.message ?? '', /authenticator scheme "postgres"/);
  t.regex(error?.message ?? '', /known: memory, scribble/);
  const empty = t.throws(() => new SchemeRegistry<string>('backplane').resolve('redis://x:1'), { instanceOf: MistError });
  t.regex(empty?.message ?? '', /known: none/);
});

test('SchemeRegistry.resolve of a known scheme returns its factory and the parsed URL', (t) => {
  const registry = new SchemeRegistry<string>('listener');
  registry.register('tcp', 'tcp factory', 'tcp');
  const { url, factory } = registry.resolve('tcp://127.0.0.1:1445');
  t.is(factory, 'tcp factory');
  t.is(url.hostname, '127.0.0.1');
  t.is(url.port, '1445');
  t.deepEqual(registry.schemes(), ['tcp']);
});

test('SchemeRegistry refuses a second owner for a scheme, naming both plugins', (t) => {
  const registry = new SchemeRegistry<string>('listener');
  registry.register('tcp', 'first', 'tcp');
  const error = t.throws(() => registry.register('tcp', 'second', 'other'), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.DUPLICATE_SCHEME);
  t.regex(error?.message ?? '', /plugin "tcp" and plugin "other"/);
  t.is(registry.resolve('tcp://h:1').factory, 'first');
});

test('the package entry host/index.ts can be the first module a process loads, to embed a server', async (t) => {
  const script = [
    `const mist = await import(${JSON.stringify(CORE)});`,
    "const server = await mist.startServer({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'ERROR' });",
    "process.stdout.write(server.url('tcp'));",
    'await server.close();',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '--eval', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  t.is(await exited, 0, stderr);
  t.regex(stdout, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
});
