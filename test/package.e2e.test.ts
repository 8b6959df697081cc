/**
 * End to end: mist as a user gets it. `npm pack` once; an empty project in a
 * temporary folder installs the tarball (`npm ci --offline` with a lockfile
 * made from mist's own: every dependency comes from the npm cache, none from
 * the registry), and then, with no tsx anywhere:
 *
 * - the tarball holds JavaScript, declarations and source maps, not sources;
 * - a strict TypeScript consumer (module nodenext, no skipLibCheck)
 *   type-checks against the shipped declarations, and a wrong use does not;
 * - `npx mist --version`, and `npx mist --server` with compiled plugins
 *   listed by path and by package name, used by `npx mist ping`, by a plain
 *   `node` script importing `mist/client` and by the compiled consumer;
 * - a TypeScript plugin runs only under the documented opt-in (`node
 *   --import tsx`), and plain node refuses it with a hint;
 * - `npx mist new` packs the installed mist into the plugin it writes.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { mistPackage } from '../cli/mist-package.ts';
import { assertBuilt } from './helpers/build.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { REPO } from './helpers/paths.ts';
import { run, type Ran } from './helpers/run.ts';

const TSC = join(REPO, 'node_modules', '.bin', 'tsc');
const TSX = import.meta.resolve('tsx');
const { version } = mistPackage();

/** A command plugin, compiled by the consumer: loaded by path (out/hello.js) and, as its own package, by name. */
const PLUGIN = (name: string) => `import { command, CommandError, definePlugin, type Message, type Request } from 'mist';

class Commands {
  constructor(private readonly greeting: string) {}

  @command('${name}', { data: 'string' })
  run(request: Request): Message {
    if (request.data === undefined) throw new CommandError('${name} needs a name');
    return { command: '${name}', data: \`\${this.greeting}, \${String(request.data)}\` };
  }
}

export default definePlugin({
  name: '${name}',
  options: { greeting: { type: 'string', default: '${name}' } },
  register(api, options) {
    const greeting: string = options.greeting;
    api.commands.add(new Commands(greeting));
  },
});
`;

const FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { mist: `file:mist-${version}.tgz` } }),
  'tsconfig.json': JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      skipLibCheck: false,
      experimentalDecorators: true,
      rootDir: 'src',
      outDir: 'out',
      // The consumer's @types/node: this checkout's, rather than an install from the registry.
      typeRoots: [join(REPO, 'node_modules', '@types')],
      types: ['node'],
    },
    include: ['src'],
  }),
  'src/hello.ts': PLUGIN('hello'),
  'src/shout.ts': PLUGIN('shout'),
  // The compiled consumer: a typed client calling both plugins' commands.
  'src/app.ts': `import { connect, MistReplyError, type MistClient } from 'mist/client';

const client: MistClient = await connect(process.argv[2]!, { reconnect: false });
const hello = await client.request({ command: 'hello', data: 'you' });
const shout = await client.request({ command: 'shout', data: 'you' });
const refused = await client.request({ command: 'hello' }).catch((err: unknown) => (err instanceof MistReplyError ? err.reply : err));
console.log(JSON.stringify([hello.data, shout.data, refused]));
await client.close();
`,
  // Types that are not \`any\`: each line is an error the shipped declarations must catch.
  'wrong/app.ts': `import { connect } from 'mist/client';
import { startServer } from 'mist';
const client = await connect('tcp://127.0.0.1:1445');
const state: number = client.state;
await client.subscribe('not-an-array');
await startServer({ listeners: 'tcp://127.0.0.1:0' });
`,
  'wrong/tsconfig.json': JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true, rootDir: '.' }, include: ['.'] }),
  // Plain JavaScript, plain node: mist/client and nothing else.
  'app.mjs': `import { connect } from 'mist/client';
const url = process.argv[2];
const subscriber = await connect(url, { reconnect: false });
const publisher = await connect(url, { reconnect: false });
await subscriber.subscribe(['deploy']);
const messages = subscriber.messages();
await publisher.publish(['deploy', 'app-42'], 'v1.2.3 is live');
const { value } = await messages.next();
console.log(JSON.stringify(value.tags), value.data);
await publisher.close();
await subscriber.close();
`,
  'mist.config.json': JSON.stringify({
    listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'],
    plugins: ['./out/hello.js', { module: 'mist-plugin-shout', options: { greeting: 'HEY' } }],
  }),
  'typescript.config.json': JSON.stringify({ listeners: ['tcp://127.0.0.1:0'], plugins: ['./src/hello.ts'] }),
};

/**
 * A lockfile for the consumer: mist from the tarball, and below it the tree
 * of mist's own lockfile less its dev dependencies, so npm takes every
 * package from its cache by integrity.
 */
async function consumerLock(tarball: string): Promise<string> {
  const lock = JSON.parse(await readFile(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const { dependencies, bin, engines, license } = lock.packages['']!;
  const integrity = `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { mist: `file:mist-${version}.tgz` } },
    'node_modules/mist': { version, resolved: `file:mist-${version}.tgz`, integrity, license, dependencies, bin, engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path.startsWith('node_modules/') && !entry.dev) packages[path] = entry;
  return JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages });
}

interface Consumer {
  dir: string;
  /** What the tarball holds, as npm pack lists it. */
  packed: string[];
  install: Ran;
  /** The consumer's build: tsc -p . */
  build: Ran;
}

const consumer = (async (): Promise<Consumer> => {
  assertBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'mist-consumer-'));
  // --ignore-scripts: the build is the one checked above, not one made while other tests read dist/.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], REPO);
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.output}`);
  const [{ filename, files }] = JSON.parse(pack.stdout) as [{ filename: string; files: Array<{ path: string }> }];
  for (const [file, text] of Object.entries(FILES)) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), text);
  }
  await writeFile(join(dir, 'package-lock.json'), await consumerLock(join(dir, filename)));
  const install = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], dir);
  const build = await run(TSC, ['-p', '.'], dir);
  // The shout plugin, as a package of its own installed beside mist (npm ci empties node_modules first).
  const shout = join(dir, 'node_modules', 'mist-plugin-shout');
  await mkdir(shout, { recursive: true });
  await writeFile(join(shout, 'package.json'), JSON.stringify({ name: 'mist-plugin-shout', type: 'module', main: 'index.js', peerDependencies: { mist: '*' } }));
  if (build.code === 0) await copyFile(join(dir, 'out', 'shout.js'), join(shout, 'index.js'));
  return { dir, packed: files.map((file) => file.path), install, build };
})();
// Started at load: a failing promise is reported by the tests that await it, not as unhandled.
consumer.catch(() => {});

test.after.always(async () => {
  const { dir } = await consumer.catch(() => ({ dir: '' }));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The consumer, installed and built; fails the test otherwise. */
async function ready(): Promise<string> {
  const { dir, install, build } = await consumer;
  if (install.code !== 0) throw new Error(`npm ci --offline failed:\n${install.output}`);
  if (build.code !== 0) throw new Error(`tsc failed:\n${build.output}`);
  return dir;
}

test('the tarball holds compiled JavaScript with declarations and source maps, no TypeScript sources, and installs from the npm cache', async (t) => {
  const { packed, install } = await consumer;
  t.is(install.code, 0, install.output);
  for (const file of ['dist/cli/bin.js', 'dist/host/index.js', 'dist/host/index.d.ts', 'dist/host/index.js.map', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/browser/mist-client.js']) {
    t.true(packed.includes(file), `has ${file}`);
  }
  const sources = packed.filter((file) => /\.ts$/.test(file) && !file.endsWith('.d.ts') && !file.startsWith('templates/'));
  t.deepEqual(sources, [], 'no TypeScript to run');
  const dir = await ready();
  const installed = JSON.parse(await readFile(join(dir, 'node_modules', 'mist', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  t.false('tsx' in installed.dependencies, 'tsx is for development only');
  const tsx = await run(process.execPath, ['-e', "import('tsx').then(() => process.exit(1), () => process.exit(0))"], dir);
  t.is(tsx.code, 0, 'no tsx installed in the consumer');
});

test('a strict TypeScript consumer (module nodenext, no skipLibCheck) type-checks against the shipped declarations', async (t) => {
  const { build } = await consumer;
  t.is(build.code, 0, build.output);
  t.is(build.output, '');
});

test('the shipped declarations are real types: a wrong use of mist or mist/client fails to type-check', async (t) => {
  const dir = await ready();
  const wrong = await run(TSC, ['-p', 'wrong'], dir);
  t.not(wrong.code, 0);
  t.regex(wrong.output, /wrong\/app\.ts\(4,7\): error TS2322/);
  t.regex(wrong.output, /wrong\/app\.ts\(5,24\): error TS2345/);
  t.regex(wrong.output, /wrong\/app\.ts\(6,21\): error TS2322/);
});

test('npx mist --version prints the version, from the compiled executable', async (t) => {
  const dir = await ready();
  const mist = await MistCli.run(t, ['--version'], { spawn: true, command: ['npx', 'mist'], cwd: dir });
  t.is(mist.status.code, 0, mist.stderr);
  t.is(mist.stdout.trim(), version);
});

test('npx mist --server runs with compiled plugins by path and by package name; npx mist ping, a plain node script and the compiled consumer use it', async (t) => {
  t.timeout(120_000);
  const dir = await ready();
  const server = MistCli.start(t, ['--server', '--config', 'mist.config.json'], { spawn: true, command: ['npx', 'mist'], cwd: dir });
  const [tcp] = await server.ready();
  t.truthy(tcp);
  const { hostname, port } = new URL(tcp!);

  const ping = await MistCli.run(t, ['ping', '--host', `${hostname}:${port}`], { spawn: true, command: ['npx', 'mist'], cwd: dir });
  t.is(ping.status.code, 0, ping.stderr);
  t.is(ping.stdout, 'pong\n');

  const plain = await run(process.execPath, ['app.mjs', tcp!], dir);
  t.is(plain.code, 0, plain.output);
  t.is(plain.stdout, '["deploy","app-42"] v1.2.3 is live\n');

  const typed = await run(process.execPath, ['out/app.js', tcp!], dir);
  t.is(typed.code, 0, typed.output);
  t.deepEqual(JSON.parse(typed.stdout), ['hello, you', 'HEY, you', { command: 'hello', error: 'hello needs a name' }]);

  // Ctrl-C: mist closes cleanly (npm then ends npx by the same signal, as it does for any command it runs).
  server.stop('SIGINT');
  await server.exit();
  t.like(server.logs.find((line) => line.msg === 'shutting down'), { signal: 'SIGINT' });
  t.truthy(server.logs.find((line) => line.msg === 'closed'));
  t.is(server.stderr, '');
});

test('a TypeScript plugin needs the opt-in: plain node refuses it with a hint, node --import tsx runs it', async (t) => {
  t.timeout(120_000);
  const dir = await ready();
  const bin = join(dir, 'node_modules', 'mist', 'dist', 'cli', 'bin.js');
  const refused = await MistCli.run(t, ['--server', '--config', 'typescript.config.json'], { spawn: true, command: [process.execPath, bin], cwd: dir });
  t.is(refused.status.code, 2);
  t.regex(refused.stderr, /cannot load plugin "\.\/src\/hello\.ts": .*A TypeScript plugin needs a TypeScript loader: build it to JavaScript, or run mist under tsx/);

  // tsx takes experimentalDecorators from the consumer's tsconfig.json, which includes src/.
  const server = MistCli.start(t, ['--server', '--config', 'typescript.config.json'], { spawn: true, command: [process.execPath, `--import=${TSX}`, bin], cwd: dir });
  const [tcp] = await server.ready();
  const typed = await run(process.execPath, ['-e', `import('mist/client').then(async ({ connect }) => { const c = await connect('${tcp}'); console.log((await c.request({ command: 'hello', data: 'ts' })).data); await c.close(); })`], dir);
  t.is(typed.code, 0, typed.output);
  t.is(typed.stdout, 'hello, ts\n');
  server.stop('SIGTERM');
  t.deepEqual(await server.exit(), { code: 0, signal: null });
});

test('npx mist new writes a plugin package holding the installed mist, packed again byte for byte', async (t) => {
  const dir = await ready();
  const made = await MistCli.run(t, ['new', 'command', 'hello'], { spawn: true, command: ['npx', 'mist'], cwd: dir });
  t.is(made.status.code, 0, made.stderr);
  const tarball = `mist-${version}.tgz`;
  t.regex(made.stdout, new RegExp(`^ {2}${tarball.replaceAll('.', '\\.')}$`, 'm'));
  t.deepEqual(await readFile(join(dir, 'mist-plugin-hello', tarball)), await readFile(join(dir, tarball)));
});
