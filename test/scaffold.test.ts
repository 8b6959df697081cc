/** `mist new listener|authenticator|command NAME [--dir DIR]`, run in this process through main(). */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { UsageError } from '../cli/io.ts';
import { mistPackage } from '../cli/mist-package.ts';
import { BUILT_IN_NAMES, PLUGIN_KINDS, scaffold } from '../cli/new.ts';
import { assertBuilt } from './helpers/build.ts';
import { tempFolder } from './helpers/files.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { REPO } from './helpers/paths.ts';
import { startTestServer } from './helpers/server.ts';

const { version } = mistPackage();
const TARBALL = `mist-${version}.tgz`;

// mist new packs the running mist: from this checkout, that is dist/ as built.
test.before(() => assertBuilt());

async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

for (const [kind, source] of [
  ['listener', 'src/index.ts'],
  ['authenticator', 'src/index.ts'],
  ['command', 'src/index.ts'],
] as const) {
  test(`mist new ${kind} NAME writes a plugin package named NAME into ./mist-plugin-NAME and says what to do next`, async (t) => {
    const cwd = await tempFolder(t);
    const { status: { code }, stdout, stderr } = await MistCli.run(t, ['new', kind, 'my-thing2'], { cwd });
    t.is(code, 0, stderr);
    const dir = join(cwd, 'mist-plugin-my-thing2');
    const files = await filesBelow(dir);
    t.deepEqual(files, ['.gitignore', 'README.md', TARBALL, 'package.json', source, 'test/my-thing2.test.ts', 'tsconfig.json'].sort());
    for (const file of files) t.true(stdout.includes(`  ${file}\n`), `lists ${file}`);
    t.regex(stdout, /Next steps:\n {2}cd mist-plugin-my-thing2\n {2}npm install/);
    for (const file of files.filter((name) => name !== TARBALL)) {
      const text = await readFile(join(dir, file), 'utf8');
      t.notRegex(text, /__[A-Za-z_]+__/, `${file} has every placeholder filled in`);
      t.false(text.includes(cwd) || text.includes(REPO), `${file} names no folder of this machine, so the package can move`);
    }
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    t.is(pkg.name as unknown, 'mist-plugin-my-thing2');
    t.is(pkg.devDependencies!.mist, `file:${TARBALL}`, 'mist comes from the tarball beside it, not the registry');
    t.is(pkg.peerDependencies!.mist, `^${version}`);
    t.is(pkg.main as unknown, './dist/index.js', 'mist loads the compiled plugin');
    t.is(pkg.scripts!.prepare, 'tsc', 'npm install builds it');
    const code2 = await readFile(join(dir, source), 'utf8');
    t.regex(code2, /name: 'my-thing2'/);
    t.regex(code2, /from 'mist'/);
    if (kind !== 'command') t.regex(code2, /class MyThing2(Listener|Authenticator)/);
    else t.regex(code2, /class MyThing2Command/);
  });
}

test('mist new … --dir DIR writes into DIR, which may exist empty', async (t) => {
  const cwd = await tempFolder(t, { 'empty/.keep': '' });
  const { status: { code }, stderr } = await MistCli.run(t, ['new', 'command', 'stats', '--dir', 'plugins/stats'], { cwd });
  t.is(code, 0, stderr);
  t.true((await filesBelow(join(cwd, 'plugins/stats'))).includes('test/stats.test.ts'));
});

test('mist new refuses a non-empty folder, exits 1 and leaves it as it was', async (t) => {
  const cwd = await tempFolder(t, { 'taken/notes.txt': 'mine' });
  const { status: { code }, stdout, stderr } = await MistCli.run(t, ['new', 'listener', 'unix', '--dir', 'taken'], { cwd });
  t.is(code, 1);
  t.regex(stderr, /taken exists and is not empty/);
  t.is(stdout, '');
  t.deepEqual(await filesBelow(join(cwd, 'taken')), ['notes.txt']);
});

const usage = test.macro({
  async exec(t, args: string[], message: RegExp) {
    const cwd = await tempFolder(t);
    const { status: { code }, stderr } = await MistCli.run(t, ['new', ...args], { cwd });
    t.is(code, 2);
    t.regex(stderr, message);
    t.regex(stderr, /Usage: mist new listener\|authenticator\|command NAME \[--dir DIR\]/);
    t.deepEqual(await readdir(cwd), [], 'nothing written');
  },
  title: (what = '') => `mist new ${what} exits 2 with a usage message`,
});

test('with a NAME holding capitals or underscores', usage, ['listener', 'My_Listener'], /invalid plugin name "My_Listener"/);
test('with an unknown kind', usage, ['widget', 'x'], /unknown plugin kind "widget" \(known: listener, authenticator, command\)/);
test('without a NAME', usage, ['listener'], /expected a plugin kind and a NAME/);

test('plugin names are lowercase letters, digits and dashes, starting with a letter', async (t) => {
  const dir = await tempFolder(t);
  for (const bad of ['9lives', '-x', 'a_b', 'A', 'a.b', 'a b', '']) {
    await t.throwsAsync(scaffold('command', bad, join(dir, 'out')), { instanceOf: UsageError }, bad);
  }
  t.deepEqual(await readdir(dir), [], 'nothing written');
  t.true((await scaffold('command', 'a-1-b', join(dir, 'ok'))).includes('test/a-1-b.test.ts'));
});

test('with the name of a built-in command', usage, ['command', 'ping'], /"ping" is a built-in command of mist: a plugin command of the same name would keep mist from starting\. Choose another NAME \(built-in: auth, list, .*who\)/);
test('with the scheme of a built-in listener', usage, ['listener', 'ws'], /"ws" is a built-in listener scheme of mist/);
test('with the scheme of a built-in authenticator', usage, ['authenticator', 'memory'], /"memory" is a built-in authenticator scheme of mist/);

test('a name built in for one kind is free for another: mist new listener auth', async (t) => {
  const dir = await tempFolder(t);
  t.true((await scaffold('listener', 'auth', join(dir, 'auth'))).includes('test/auth.test.ts'));
});

test("the built-in names mist new refuses are exactly the commands and schemes of a server's built-in plugins", async (t) => {
  const { server } = await startTestServer(t);
  t.deepEqual([...BUILT_IN_NAMES.command], server.commandNames);
  t.deepEqual([...BUILT_IN_NAMES.listener], server.schemes('listeners'));
  t.deepEqual([...BUILT_IN_NAMES.authenticator], server.schemes('authenticators'));
  t.deepEqual(Object.keys(BUILT_IN_NAMES).sort(), [...PLUGIN_KINDS].sort());
});
