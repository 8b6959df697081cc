/**
 * The plugin API beyond registration: the names the package exports, option
 * shapes and validation, lifecycle hooks and their order, plugins given as
 * package folders, and command handlers added as ready-made objects.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { ErrorCodes, MistError, ShapeError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { checkOptions } from '../host/shape.ts';
import { definePlugin } from '../host/api.ts';
import { MistServer } from '../host/server.ts';
import { builtinPlugins } from '../plugins/preset.ts';
import { tempFolder } from './helpers/files.ts';
import { inRepo, source } from './helpers/paths.ts';
import { LineClient, logCapture, type LogLines } from './helpers/server.ts';
import './helpers/typescript.ts';

const CORE = source('host/index.ts');

/** Plugins that record their lifecycle in `globalThis.mistEvents`, so the test can read the order. */
const FILES: Record<string, string> = {
  'package.json': JSON.stringify({ type: 'module' }),

  'typed.plugin.ts': `
import { command, definePlugin, type Message } from '${CORE}';

class Greeter {
  constructor(private readonly greeting: string, private readonly times: number) {}

  @command('greet')
  greet(): Message {
    return { command: 'greet', data: Array(this.times).fill(this.greeting).join(' ') };
  }
}

export default definePlugin({
  name: 'typed',
  options: {
    greeting: { type: 'string', default: 'hello' },
    times: { type: 'integer', min: 1, max: 5, default: 1 },
    mode: { type: 'string', oneOf: ['loud', 'quiet'] },
  },
  register(api, options) {
    const greeting: string = options.mode === 'loud' ? options.greeting.toUpperCase() : options.greeting;
    api.commands.add(new Greeter(greeting, options.times));
  },
});
`,

  'validated.plugin.ts': `
import { definePlugin } from '${CORE}';

export default definePlugin<{ url: URL }>({
  name: 'validated',
  validate(options) {
    const raw = (options as { url?: unknown } | undefined)?.url;
    if (typeof raw !== 'string') throw new Error('options.url must be a URL string');
    return { url: new URL(raw) };
  },
  register(api, options) {
    api.onStart(() => api.logger.info({ host: options.url.host }, 'validated started'));
  },
});
`,

  'lifecycle.plugin.ts': `
import { definePlugin } from '${CORE}';

type Options = { label: string; failAt?: 'start' | 'ready' | 'close' };
const events = ((globalThis as { mistEvents?: string[] }).mistEvents ??= []);

export default definePlugin<Options>({
  name: 'lifecycle',
  register(api, { label, failAt }) {
    events.push(label + ':register');
    api.onStart(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push(label + ':start');
      api.logger.info(label + ':start');
      if (failAt === 'start') throw new Error(label + ' cannot reach its database');
    });
    api.onReady(() => {
      events.push(label + ':ready');
      api.logger.info(label + ':ready');
      if (failAt === 'ready') throw new Error(label + ' is not ready');
    });
    api.onClose(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push(label + ':close');
      if (failAt === 'close') throw new Error(label + ' closed badly');
    });
  },
});
`,

  // A plugin shipped as a package folder: package.json main points at its source.
  'folder-plugin/package.json': JSON.stringify({ name: 'folder-plugin', type: 'module', main: './src/index.ts' }),
  'folder-plugin/src/index.ts': `
import { command, definePlugin, type Message } from '${CORE}';
class FolderCommands {
  @command('from-folder')
  fromFolder(): Message {
    return { command: 'from-folder', data: 'yes' };
  }
}
export default definePlugin({ name: 'folder-plugin', register: (api) => api.commands.add(FolderCommands) });
`,
};

// Compile-time: an options shape types what register receives (tsc checks this file).
export const typedExample = definePlugin({
  name: 'typed-example',
  options: { host: { type: 'string', default: 'localhost' }, port: { type: 'integer' }, tags: { type: 'strings', required: true } },
  register(_api, options) {
    const host: string = options.host;
    const port: number | undefined = options.port;
    const tags: string[] = options.tags;
    void [host, port, tags];
  },
});

function events(): string[] {
  return ((globalThis as { mistEvents?: string[] }).mistEvents ??= []);
}

async function serverWith(t: ExecutionContext, config: ConfigFile): Promise<{ server: MistServer; logs: LogLines }> {
  const dir = await tempFolder(t, FILES);
  const logs: LogLines = [];
  const full = buildConfig({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'DEBUG', ...config }, dir, `${dir}/mist.config.yaml`);
  const server = new MistServer(full, { logger: createLogger(full.logLevel, logCapture(logs)), plugins: builtinPlugins });
  t.teardown(() => server.close());
  return { server, logs };
}

// Hook order is global state: these tests run one at a time.
test.serial.beforeEach(() => {
  events().length = 0;
});

test('the package exports exactly these runtime values: a new one is a deliberate change, made here', async (t) => {
  const mist = await import(CORE);
  t.deepEqual(Object.keys(mist).sort(), [
    'CommandError',
    'ErrorCodes',
    'MistError',
    'MistServer',
    'WEBSOCKET_PATH',
    'command',
    'dataJson',
    'definePlugin',
    'parseMessage',
    'startServer',
  ]);
});

test('checkOptions fills defaults, keeps given values and refuses unknown keys, naming them', (t) => {
  const shape = { name: { type: 'string', required: true }, every: { type: 'integer', default: 10 }, tags: { type: 'strings' } } as const;
  t.deepEqual(checkOptions(shape, { name: 'x' }), { name: 'x', every: 10 });
  t.deepEqual(checkOptions(shape, { name: 'x', every: 3, tags: ['a'] }), { name: 'x', every: 3, tags: ['a'] });
  const unknown = t.throws(() => checkOptions(shape, { name: 'x', evrey: 3 }), { instanceOf: ShapeError });
  t.is(unknown?.key, 'options.evrey');
  t.regex(unknown?.message ?? '', /known: name, every, tags/);
  t.is(t.throws(() => checkOptions(shape, {}), { instanceOf: ShapeError })?.key, 'options.name');
  t.is(t.throws(() => checkOptions(shape, { name: 'x', every: 1.5 }), { instanceOf: ShapeError })?.message, 'options.every must be an integer');
  t.is(t.throws(() => checkOptions(shape, { name: 'x', tags: ['a', 1] }), { instanceOf: ShapeError })?.key, 'options.tags');
  t.is(t.throws(() => checkOptions(shape, ['x']), { instanceOf: ShapeError })?.message, 'options must be an object');
  t.deepEqual(checkOptions({ on: { type: 'boolean', default: false } }, undefined), { on: false });
});

test('a plugin with an options shape gets its options with defaults filled in', async (t) => {
  const { server } = await serverWith(t, { plugins: [{ module: './typed.plugin.ts', options: { times: 2 } }] });
  await server.start();
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'greet' }), { command: 'greet', data: 'hello hello' });
});

test('a plugin listed without options still gets its defaults', async (t) => {
  const { server } = await serverWith(t, { plugins: ['./typed.plugin.ts'] });
  await server.start();
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'greet' }), { command: 'greet', data: 'hello' });
});

const badOptions = test.macro({
  async exec(t, options: unknown, key: RegExp) {
    const { server } = await serverWith(t, { plugins: [{ module: './typed.plugin.ts', options }] });
    const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
    t.is(error?.code, ErrorCodes.CONFIG);
    t.regex(error?.message ?? '', /plugin "typed"/);
    t.regex(error?.message ?? '', key);
    t.regex(error?.message ?? '', /mist\.config\.yaml/, 'names the config file');
    t.is(server.state, 'closed');
    t.deepEqual(server.urls, []);
  },
  title: (what = '') => `plugin options ${what} stop start-up with MIST_ERR_CONFIG naming the plugin, the key and the file`,
});

test('of the wrong type', badOptions, { times: 'twice' }, /options\.times must be an integer/);
test('out of range', badOptions, { times: 9 }, /options\.times must be at most 5/);
test('not among the allowed values', badOptions, { mode: 'shouty' }, /options\.mode must be one of loud, quiet/);
test('with an unknown key', badOptions, { greting: 'hi' }, /options\.greting is not a known option/);
test('that are not an object', badOptions, 'hello', /options must be an object/);

test("a plugin's validate function transforms the options register receives", async (t) => {
  const { server, logs } = await serverWith(t, { plugins: [{ module: './validated.plugin.ts', options: { url: 'redis://cache:6379' } }] });
  await server.start();
  t.like(logs.find((line) => line.msg === 'validated started'), { plugin: 'validated', host: 'cache:6379' });
});

test("a plugin's validate function that throws stops start-up naming the plugin and its message", async (t) => {
  const { server } = await serverWith(t, { plugins: [{ module: './validated.plugin.ts', options: { url: 42 } }] });
  const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.CONFIG);
  t.regex(error?.message ?? '', /plugin "validated": invalid options: options\.url must be a URL string/);
});

const twoPlugins = (first: object = {}, second: object = {}): ConfigFile => ({
  plugins: [
    { module: './lifecycle.plugin.ts', options: { label: 'a', ...first } },
    // The same module twice, as two plugins: a query makes it a separate module instance only for the import cache.
    { module: './lifecycle.plugin.ts', options: { label: 'b', ...second } },
  ],
});

test.serial('hooks run register → start → ready in plugin order, and close in reverse order', async (t) => {
  const { server } = await serverWith(t, twoPlugins());
  await server.start();
  t.deepEqual(events(), ['a:register', 'b:register', 'a:start', 'b:start', 'a:ready', 'b:ready']);
  await server.close();
  t.deepEqual(events().slice(6), ['b:close', 'a:close']);
});

test.serial('start hooks run before listeners bind and ready hooks after', async (t) => {
  const { server, logs } = await serverWith(t, twoPlugins());
  await server.start();
  const at = (msg: string) => logs.findIndex((line) => String(line.msg).startsWith(msg));
  t.true(at('b:start') >= 0);
  t.true(at('b:start') < at('listening on'));
  t.true(at('listening on') < at('a:ready'));
});

test.serial('a failing start hook stops start-up naming the plugin, binds nothing, and still runs every close hook', async (t) => {
  const { server, logs } = await serverWith(t, twoPlugins({}, { failAt: 'start' }));
  const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.PLUGIN);
  t.is(error?.message, 'plugin "lifecycle" failed to start: b cannot reach its database');
  t.is(server.state, 'closed');
  t.false(logs.some((line) => String(line.msg).startsWith('listening on')));
  t.deepEqual(events(), ['a:register', 'b:register', 'a:start', 'b:start', 'b:close', 'a:close']);
});

test.serial('a failing ready hook stops the server, closing its listeners and running the close hooks', async (t) => {
  const { server, logs } = await serverWith(t, twoPlugins({ failAt: 'ready' }));
  const error = await t.throwsAsync(server.start(), { instanceOf: MistError });
  t.regex(error?.message ?? '', /plugin "lifecycle" failed in its ready hook: a is not ready/);
  t.is(server.state, 'closed');
  t.true(logs.some((line) => String(line.msg).startsWith('listening on')));
  t.deepEqual(events().slice(-2), ['b:close', 'a:close']);
});

test.serial('a failing close hook is logged naming the plugin, and the other close hooks still run', async (t) => {
  const { server, logs } = await serverWith(t, twoPlugins({}, { failAt: 'close' }));
  await server.start();
  await server.close();
  t.deepEqual(events().slice(-2), ['b:close', 'a:close']);
  const logged = logs.find((line) => line.level === 'error' && line.plugin === 'lifecycle');
  t.regex(String(logged?.msg), /failed to close: b closed badly/);
  t.is(server.state, 'closed');
});

test('a plugin given as a package folder is loaded through its package.json main', async (t) => {
  const { server } = await serverWith(t, { plugins: ['./folder-plugin'] });
  await server.start();
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'from-folder' }), { command: 'from-folder', data: 'yes' });
});

test('built-in plugins import from mist only what the package exports (host/index.ts), as a third party would', async (t) => {
  const root = inRepo('plugins');
  const files = (await readdir(root, { recursive: true })).filter((file) => file.endsWith('.ts'));
  t.true(files.length >= 3);
  for (const file of files) {
    const text = await readFile(join(root, file), 'utf8');
    const core = [...text.matchAll(/from '((?:\.\.\/)+(?:core|host)\/[^']+)'/g)].map((m) => m[1]);
    t.deepEqual(
      core.filter((path) => !path.endsWith('/host/index.ts')),
      [],
      `${file} imports core internals`,
    );
  }
});
