import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cosmiconfig } from 'cosmiconfig';
import { DEFAULT_HISTORY, DEFAULT_LIMITS, DEFAULT_LISTENERS, DEFAULT_LOG_LEVEL } from '../host/defaults.ts';
import type { ConfigFile } from '../host/config-schema.ts';
import type { ConfigFlags } from '../host/config.ts';
import { ErrorCodes, MistError } from '../core/errors.ts';
import { tempFolder } from './helpers/files.ts';
import { inRepo } from './helpers/paths.ts';
import './helpers/typescript.ts';

// After tsx (the import above), as under `node --import tsx`: tsx gives a CommonJS-scoped
// mist.config.ts its default export only when the module importing it was loaded through tsx too.
const { buildConfig, loadConfig } = await import('../host/config.ts');

/** Loading fails with MIST_ERR_CONFIG; returns the message. */
async function configError(t: ExecutionContext, flags: ConfigFlags, cwd: string): Promise<string> {
  const error = await t.throwsAsync(loadConfig(flags, cwd), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.CONFIG);
  return error?.message ?? '';
}

const DEFAULTS = {
  listeners: [...DEFAULT_LISTENERS],
  logLevel: DEFAULT_LOG_LEVEL,
  limits: { ...DEFAULT_LIMITS },
  plugins: [],
  authenticator: undefined,
  token: undefined,
  cluster: undefined,
  tls: undefined,
  allowedOrigins: undefined,
  history: { ...DEFAULT_HISTORY },
};

const EXAMPLE = inRepo('docs/mist.config.example.yaml');

test('the example config file (docs/mist.config.example.yaml) sets every limit, each to its default, and only defaults', async (t) => {
  const { file, ...config } = await loadConfig({ config: EXAMPLE });
  t.is(file, EXAMPLE);
  t.deepEqual(config, DEFAULTS);
  // Equal once merged with the defaults is not enough: a limit left out of the file would be equal too.
  const raw = (await cosmiconfig('mist').load(EXAMPLE))?.config as { limits: Record<string, unknown> };
  t.deepEqual(Object.keys(raw.limits).sort(), Object.keys(DEFAULT_LIMITS).sort());
});

const discovered = test.macro(async (t, name: string, content: string) => {
  const dir = await tempFolder(t, { [name]: content });
  const config = await loadConfig({}, dir);
  t.is(config.file, join(dir, name));
  t.deepEqual(config.listeners, ['tcp://127.0.0.1:7001']);
  t.is(config.logLevel, 'WARN');
});

test('mist.config.yaml in the working directory is discovered', discovered, 'mist.config.yaml', 'listeners: [tcp://127.0.0.1:7001]\nlogLevel: WARN\n');

test(
  'mist.config.json in the working directory is discovered',
  discovered,
  'mist.config.json',
  JSON.stringify({ listeners: ['tcp://127.0.0.1:7001'], logLevel: 'WARN' }),
);

test('.mistrc is discovered and read as YAML', discovered, '.mistrc', 'listeners:\n  - tcp://127.0.0.1:7001\nlogLevel: WARN\n');

test('.mistrc.json is discovered', discovered, '.mistrc.json', JSON.stringify({ listeners: ['tcp://127.0.0.1:7001'], logLevel: 'WARN' }));

test(
  'mist.config.ts is discovered and its TypeScript default export used',
  discovered,
  'mist.config.ts',
  [
    "type Level = 'WARN' | 'INFO';",
    "const logLevel: Level = 'WARN';",
    "export default { listeners: ['tcp://127.0.0.1:7001'] as string[], logLevel };",
    '',
  ].join('\n'),
);

test(
  'a "mist" key in package.json is discovered',
  discovered,
  'package.json',
  JSON.stringify({ name: 'app', version: '1.0.0', mist: { listeners: ['tcp://127.0.0.1:7001'], logLevel: 'WARN' } }),
);

test('a package.json without a "mist" key is not a config file', async (t) => {
  const dir = await tempFolder(t, { 'package.json': JSON.stringify({ name: 'app', version: '1.0.0' }) });
  const config = await loadConfig({}, dir);
  t.is(config.file, undefined);
  t.like(config, DEFAULTS);
});

test('without any config file the defaults apply', async (t) => {
  const dir = await tempFolder(t);
  const config = await loadConfig({}, dir);
  t.deepEqual(config, { ...DEFAULTS, file: undefined });
});

test('an empty discovered config file gives the defaults', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': '' });
  t.like(await loadConfig({}, dir), DEFAULTS);
});

test('an empty file given with --config gives the defaults', async (t) => {
  const dir = await tempFolder(t, { 'empty.yaml': '' });
  const config = await loadConfig({ config: 'empty.yaml' }, dir);
  t.like(config, DEFAULTS);
  t.is(config.file, join(dir, 'empty.yaml'));
});

test('--config FILE, relative to the working directory, wins over a discovered file', async (t) => {
  const dir = await tempFolder(t, {
    'mist.config.yaml': 'listeners: [tcp://127.0.0.1:7001]\nlogLevel: ERROR\n',
    'conf/other.json': JSON.stringify({ listeners: ['tcp://127.0.0.1:7002'] }),
  });
  const config = await loadConfig({ config: 'conf/other.json' }, dir);
  t.is(config.file, join(dir, 'conf/other.json'));
  t.deepEqual(config.listeners, ['tcp://127.0.0.1:7002']);
  t.is(config.logLevel, DEFAULT_LOG_LEVEL, 'nothing is taken from the discovered file');
});

test('--config accepts an absolute path', async (t) => {
  const dir = await tempFolder(t, { 'server.yaml': 'logLevel: ERROR\n' });
  const elsewhere = await tempFolder(t);
  const config = await loadConfig({ config: join(dir, 'server.yaml') }, elsewhere);
  t.is(config.file, join(dir, 'server.yaml'));
  t.is(config.logLevel, 'ERROR');
});

test('flags override the config file, which overrides the defaults', async (t) => {
  const dir = await tempFolder(t, {
    'mist.config.yaml': ['listeners: [tcp://127.0.0.1:7001]', 'logLevel: ERROR', 'limits:', '  maxTags: 8', ''].join('\n'),
  });
  const fromFile = await loadConfig({}, dir);
  t.deepEqual(fromFile.listeners, ['tcp://127.0.0.1:7001']);
  t.is(fromFile.logLevel, 'ERROR');

  const flagged = await loadConfig({ listeners: 'tcp://127.0.0.1:7002,tcp://127.0.0.1:7003', logLevel: 'DEBUG' }, dir);
  t.deepEqual(flagged.listeners, ['tcp://127.0.0.1:7002', 'tcp://127.0.0.1:7003']);
  t.is(flagged.logLevel, 'DEBUG');
  t.is(flagged.limits.maxTags, 8, 'keys without a flag still come from the file');
});

test('a flag overrides only its own key', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners: [tcp://127.0.0.1:7001]\nlogLevel: ERROR\n' });
  const onlyLevel = await loadConfig({ logLevel: 'TRACE' }, dir);
  t.deepEqual(onlyLevel.listeners, ['tcp://127.0.0.1:7001']);
  t.is(onlyLevel.logLevel, 'TRACE');
  const onlyListeners = await loadConfig({ listeners: 'tcp://127.0.0.1:7002' }, dir);
  t.deepEqual(onlyListeners.listeners, ['tcp://127.0.0.1:7002']);
  t.is(onlyListeners.logLevel, 'ERROR');
});

test('limits from the file merge with the default limits key by key', async (t) => {
  const dir = await tempFolder(t, {
    'mist.config.yaml': ['limits:', '  maxTags: 8', '  slowConsumerPolicy: disconnect', ''].join('\n'),
  });
  const config = await loadConfig({}, dir);
  t.deepEqual(config.limits, { ...DEFAULT_LIMITS, maxTags: 8, slowConsumerPolicy: 'disconnect' });
});

test('limits.flushIntervalMs defaults to 0.75 and takes a number of milliseconds, fractions included', async (t) => {
  t.is(DEFAULT_LIMITS.flushIntervalMs, 0.75);
  const dir = await tempFolder(t, { 'mist.config.yaml': 'limits:\n  flushIntervalMs: 0.5\n' });
  t.deepEqual((await loadConfig({}, dir)).limits, { ...DEFAULT_LIMITS, flushIntervalMs: 0.5 });
});

test('the limits on unfinished input and on shutdown default to 256 MiB, 30 s and 5 s; a shutdownTimeoutMs of 0 is allowed', async (t) => {
  t.is(DEFAULT_LIMITS.maxPendingInputBytes, 256 * 1024 * 1024);
  t.is(DEFAULT_LIMITS.lineTimeoutMs, 30_000);
  t.is(DEFAULT_LIMITS.shutdownTimeoutMs, 5000);
  const dir = await tempFolder(t, { 'mist.config.yaml': 'limits:\n  maxPendingInputBytes: 1000\n  lineTimeoutMs: 50\n  shutdownTimeoutMs: 0\n' });
  t.deepEqual((await loadConfig({}, dir)).limits, { ...DEFAULT_LIMITS, maxPendingInputBytes: 1000, lineTimeoutMs: 50, shutdownTimeoutMs: 0 });
});

test('listeners may be one comma-separated string, in the file as on the command line', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners: "tcp://127.0.0.1:7001, tcp://127.0.0.1:7002"\n' });
  t.deepEqual((await loadConfig({}, dir)).listeners, ['tcp://127.0.0.1:7001', 'tcp://127.0.0.1:7002']);
  t.deepEqual((await loadConfig({ listeners: ' tcp://127.0.0.1:7003 ,tcp://127.0.0.1:7004' }, dir)).listeners, [
    'tcp://127.0.0.1:7003',
    'tcp://127.0.0.1:7004',
  ]);
});

test('logLevel is case-insensitive in the file and in the flag', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'logLevel: debug\n' });
  t.is((await loadConfig({}, dir)).logLevel, 'DEBUG');
  t.is((await loadConfig({ logLevel: 'Warn' }, dir)).logLevel, 'WARN');
});

const rejected = test.macro({
  async exec(t, yaml: string, key: string) {
    const dir = await tempFolder(t, { 'mist.config.yaml': yaml });
    const message = await configError(t, {}, dir);
    t.true(message.includes(join(dir, 'mist.config.yaml')), `names the file: ${message}`);
    t.true(message.includes(key), `names the key ${key}: ${message}`);
  },
  title: (what = '') => `a config file with ${what} is rejected naming the file and the key`,
});

test('an unknown top-level key', rejected, 'listeners: [tcp://127.0.0.1:7001]\ncolour: blue\n', 'colour');
test('an unknown limit', rejected, 'limits:\n  maxFish: 3\n', 'limits.maxFish');
test('a non-integer limit', rejected, 'limits:\n  maxTags: 1.5\n', 'limits.maxTags');
test('a zero limit', rejected, 'limits:\n  maxMessageBytes: 0\n', 'limits.maxMessageBytes');
test('a negative limit', rejected, 'limits:\n  maxTagBytes: -4\n', 'limits.maxTagBytes');
test('a zero maxSubscriptionsPerConnection', rejected, 'limits:\n  maxSubscriptionsPerConnection: 0\n', 'limits.maxSubscriptionsPerConnection');
test('a limit given as a string', rejected, 'limits:\n  maxBufferedBytes: "1024"\n', 'limits.maxBufferedBytes');
test('limits that are not an object', rejected, 'limits: 12\n', 'limits');
test('a bad slowConsumerPolicy', rejected, 'limits:\n  slowConsumerPolicy: block\n', 'limits.slowConsumerPolicy');
test('a negative flushIntervalMs', rejected, 'limits:\n  flushIntervalMs: -1\n', 'limits.flushIntervalMs');
test('a flushIntervalMs over a second', rejected, 'limits:\n  flushIntervalMs: 5000\n', 'limits.flushIntervalMs');
test('a flushIntervalMs given as a string', rejected, 'limits:\n  flushIntervalMs: "1"\n', 'limits.flushIntervalMs');
test('a zero maxPendingInputBytes', rejected, 'limits:\n  maxPendingInputBytes: 0\n', 'limits.maxPendingInputBytes');
test('a zero lineTimeoutMs', rejected, 'limits:\n  lineTimeoutMs: 0\n', 'limits.lineTimeoutMs');
test('a negative shutdownTimeoutMs', rejected, 'limits:\n  shutdownTimeoutMs: -1\n', 'limits.shutdownTimeoutMs');
test('a bad logLevel', rejected, 'logLevel: loud\n', 'logLevel');
test('an empty listeners list', rejected, 'listeners: []\n', 'listeners');
test('a listener that is not a string', rejected, 'listeners: [tcp://127.0.0.1:7001, 42]\n', 'listeners entry 2 of 2 must be a listener URI string');
test('plugins that are not a list', rejected, 'plugins: ./one.ts\n', 'plugins');
test('a plugins entry that is a number', rejected, 'plugins: [./one.ts, 42]\n', 'plugins[1]');
test('a plugins entry without a module', rejected, 'plugins:\n  - options: { a: 1 }\n', 'plugins[0].module');
test('a top-level list instead of an object', rejected, '- tcp://127.0.0.1:7001\n', 'the config');
test('history that is neither false nor an object', rejected, 'history: 100\n', 'history');
test('an unknown history key', rejected, 'history:\n  maxFish: 3\n', 'history.maxFish');
test('a zero history.maxMessages', rejected, 'history:\n  maxMessages: 0\n', 'history.maxMessages');
test('a history.maxAgeMs given as a string', rejected, 'history:\n  maxAgeMs: "5m"\n', 'history.maxAgeMs');

test('history defaults to 10,000 messages, 64 MiB and 5 minutes; false turns it off, true is the defaults, bounds merge key by key', async (t) => {
  t.deepEqual(DEFAULT_HISTORY, { maxMessages: 10_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 300_000 });
  t.deepEqual(buildConfig({}).history, DEFAULT_HISTORY);
  t.is(buildConfig({ history: false }).history, false);
  const dir = await tempFolder(t, { 'off.yaml': 'history: false\n', 'on.yaml': 'history: true\n', 'some.yaml': 'history:\n  maxMessages: 50\n' });
  t.is((await loadConfig({ config: 'off.yaml' }, dir)).history, false);
  t.deepEqual((await loadConfig({ config: 'on.yaml' }, dir)).history, DEFAULT_HISTORY);
  t.deepEqual((await loadConfig({ config: 'some.yaml' }, dir)).history, { ...DEFAULT_HISTORY, maxMessages: 50 });
});

test('a YAML syntax error is reported naming the file', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'listeners: [tcp://127.0.0.1:7001\nlogLevel: : :\n' });
  const message = await configError(t, {}, dir);
  t.true(message.includes(join(dir, 'mist.config.yaml')), message);
});

test('a JSON syntax error is reported naming the file', async (t) => {
  const dir = await tempFolder(t, { 'conf.json': '{"logLevel": }' });
  const message = await configError(t, { config: 'conf.json' }, dir);
  t.true(message.includes(join(dir, 'conf.json')), message);
});

test('a missing --config file is reported naming the file', async (t) => {
  const dir = await tempFolder(t);
  const message = await configError(t, { config: 'nowhere/mist.yaml' }, dir);
  t.true(message.includes(join(dir, 'nowhere/mist.yaml')), message);
});

test('a bad --log-level flag is reported naming --log-level', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'logLevel: INFO\n' });
  const message = await configError(t, { logLevel: 'loud' }, dir);
  t.true(message.includes('--log-level'), message);
  t.false(message.includes('mist.config.yaml'), 'the file is not to blame');
});

test('an empty --listeners flag is reported naming --listeners', async (t) => {
  const dir = await tempFolder(t);
  const message = await configError(t, { listeners: ' , ' }, dir);
  t.true(message.includes('--listeners'), message);
});

test('a valid flag does not excuse an invalid file', async (t) => {
  const dir = await tempFolder(t, { 'mist.config.yaml': 'logLevel: loud\n' });
  const message = await configError(t, { logLevel: 'INFO' }, dir);
  t.true(message.includes(join(dir, 'mist.config.yaml')), message);
  t.true(message.includes('logLevel'), message);
});

test('buildConfig resolves relative plugin paths from the base folder it is given', (t) => {
  const config = buildConfig({ plugins: ['./one.ts', { module: 'mist-plugin-two', options: { every: 10 } }] }, '/srv/app');
  t.deepEqual(config.plugins, [
    { module: './one.ts', options: undefined, base: '/srv/app' },
    { module: 'mist-plugin-two', options: { every: 10 }, base: '/srv/app' },
  ]);
  t.like(config, { listeners: DEFAULTS.listeners, logLevel: DEFAULTS.logLevel, limits: DEFAULTS.limits, file: undefined });
});

test("plugins in a config file resolve from that file's folder, not the working directory", async (t) => {
  const dir = await tempFolder(t, { 'conf/mist.yaml': 'plugins:\n  - ./plugins/echo.ts\n' });
  const config = await loadConfig({ config: 'conf/mist.yaml' }, dir);
  t.deepEqual(config.plugins, [{ module: './plugins/echo.ts', options: undefined, base: join(dir, 'conf') }]);
});

test('without a config file, plugins resolve from the working directory', (t) => {
  const config = buildConfig({ plugins: ['./echo.ts'] });
  t.is(config.plugins[0]?.base, process.cwd());
});

test('buildConfig rejects an invalid config with MIST_ERR_CONFIG naming the key', (t) => {
  const error = t.throws(() => buildConfig({ limits: { maxTags: 0 } }), { instanceOf: MistError });
  t.is(error?.code, ErrorCodes.CONFIG);
  t.regex(error?.message ?? '', /limits\.maxTags/);
  const unknown = t.throws(() => buildConfig({ colour: 'blue' } as ConfigFile), { instanceOf: MistError });
  t.regex(unknown?.message ?? '', /colour/);
});
