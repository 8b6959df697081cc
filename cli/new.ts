/**
 * `mist new listener|authenticator|command NAME [--dir DIR]`: writes a
 * ready-to-run plugin package from templates/, names filled in. No `mist`
 * package is published, so the running mist is packed into the new package
 * (`mist-VERSION.tgz`, its dev dependency): the package then installs
 * wherever it is moved.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { UsageError, type CliIo } from './io.ts';
import { MIST_ROOT, mistPackage } from './mist-package.ts';

export const PLUGIN_KINDS = ['listener', 'authenticator', 'command'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** A plugin name: a URI scheme and a command name alike, and part of an npm package name. */
const NAME = /^[a-z][a-z0-9-]*$/;

/**
 * What mist's built-in plugins already call themselves, by kind: a plugin of
 * the same kind and name would stop mist at start-up, two plugins claiming
 * one command or scheme (test/scaffold.test.ts checks the lists against a
 * server's).
 */
export const BUILT_IN_NAMES: Readonly<Record<PluginKind, readonly string[]>> = {
  command: ['auth', 'list', 'listall', 'ping', 'publish', 'register', 'resume', 'set', 'subscribe', 'tags', 'tokens', 'unregister', 'unset', 'unsubscribe', 'who'],
  listener: ['http', 'https', 'tcp', 'tls', 'ws', 'wss'],
  authenticator: ['jwt', 'memory', 'postgres', 'postgresql', 'scribble'],
};

const BUILT_IN_WHAT: Record<PluginKind, string> = { command: 'command', listener: 'listener scheme', authenticator: 'authenticator scheme' };

export const NEW_USAGE = 'mist new listener|authenticator|command NAME [--dir DIR]';

/**
 * Writes the `kind` template into `dir` (created; must not exist or be
 * empty) with `name` filled in, and mist packed beside it. Returns the files
 * written, relative to `dir`.
 */
export async function scaffold(kind: PluginKind, name: string, dir: string): Promise<string[]> {
  if (!PLUGIN_KINDS.includes(kind)) throw new UsageError(`unknown plugin kind "${kind}" (known: ${PLUGIN_KINDS.join(', ')})`);
  if (!NAME.test(name)) {
    throw new UsageError(`invalid plugin name "${name}": use lowercase letters, digits and dashes, starting with a letter`);
  }
  if (BUILT_IN_NAMES[kind].includes(name)) {
    const what = BUILT_IN_WHAT[kind];
    throw new UsageError(
      `"${name}" is a built-in ${what} of mist: a plugin ${what} of the same name would keep mist from starting. ` +
        `Choose another NAME (built-in: ${BUILT_IN_NAMES[kind].join(', ')})`,
    );
  }
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (existing.length > 0) throw new Error(`${dir} exists and is not empty; choose another --dir`);

  const values = placeholders(name);
  const template = join(MIST_ROOT, 'templates', kind);
  const files = await listFiles(template);
  const written: string[] = [];
  for (const file of files) {
    const path = fill(file === 'gitignore' ? '.gitignore' : file, values);
    await mkdir(dirname(join(dir, path)), { recursive: true });
    const text = await readFile(join(template, file), 'utf8');
    await writeFile(join(dir, path), fill(text, file.endsWith('.json') ? jsonEscaped(values) : values));
    written.push(path);
  }
  written.push(await packMist(dir));
  return written.sort();
}

/** The CLI: parses `argv` (after `new`), scaffolds, prints what was written and what to do next. Returns the exit code. */
export async function newPlugin(argv: string[], io: CliIo): Promise<number> {
  const { cwd } = io;
  let kind: string | undefined;
  let name: string | undefined;
  let dir: string;
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { dir: { type: 'string' } } });
    if (positionals.length !== 2) throw new UsageError('expected a plugin kind and a NAME');
    [kind, name] = positionals as [string, string];
    dir = resolve(cwd, values.dir ?? `mist-plugin-${name}`);
    const files = await scaffold(kind as PluginKind, name, dir);
    const shown = relative(cwd, dir) || '.';
    io.stdout.write(
      [
        `Created the ${kind} plugin "${name}" in ${shown}:`,
        ...files.map((file) => `  ${file}`),
        '',
        'Next steps:',
        `  cd ${shown}`,
        `  npm install      # mist from ${files.find((file) => file.endsWith('.tgz'))}, the test tools; builds dist/`,
        '  npm test         # runs the plugin in a real mist server',
        `Then list it under "plugins:" in your mist config (see ${join(shown, 'README.md')}).`,
        '',
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`mist new: ${(err as Error).message}\n${usage ? `Usage: ${NEW_USAGE}\n` : ''}`);
    return usage ? 2 : 1;
  }
}

function placeholders(name: string): Record<string, string> {
  const pkg = mistPackage();
  const versions = { ...pkg.dependencies, ...pkg.devDependencies };
  return {
    __name__: name,
    __Name__: name.replace(/(^|-)([a-z0-9])/g, (_, _dash: string, c: string) => c.toUpperCase()),
    __MIST_VERSION__: pkg.version,
    // The generated package builds and tests with the versions mist itself uses.
    __AVA_VERSION__: versions.ava!,
    __TSX_VERSION__: versions.tsx!,
    __TYPES_NODE_VERSION__: versions['@types/node']!,
    __TYPESCRIPT_VERSION__: versions.typescript!,
  };
}

/** The tarball packMist made first in this process, or is making: later packages get a copy of it. */
let packed: Promise<string> | undefined;

/** Puts mist, packed, into `dir`. Returns the tarball's file name. */
async function packMist(dir: string): Promise<string> {
  if (packed) {
    const first = await packed.catch(() => undefined);
    // A copy, unless the first failed or went with its folder.
    if (first && (await copyFile(first, join(dir, basename(first))).then(() => true, () => false))) return basename(first);
  }
  packed = npmPack(resolve(dir));
  return basename(await packed);
}

/**
 * `npm pack` of the running mist into `dir`, as it is (no build: what runs
 * is what is packed). Returns the tarball's path.
 */
async function npmPack(dir: string): Promise<string> {
  const args = ['pack', '--ignore-scripts', '--json', '--pack-destination', dir];
  const { stdout } = await promisify(execFile)('npm', args, { cwd: MIST_ROOT }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`could not pack mist (npm ${args.join(' ')} in ${MIST_ROOT}): ${err.stderr?.trim() || err.message}`, { cause: err });
  });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  return join(dir, filename);
}

function fill(text: string, values: Record<string, string>): string {
  return text.replace(/__[A-Za-z_]+?__/g, (key) => values[key] ?? key);
}

function jsonEscaped(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, JSON.stringify(value).slice(1, -1)]));
}

/** Every file below `root`, dotfiles included, relative to it. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(root, join(entry.parentPath, entry.name)));
}
