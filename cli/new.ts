/**
 * `mist new listener|authenticator|command NAME [--dir DIR]`: writes a
 * ready-to-run plugin package from templates/, names filled in. The package
 * takes mist from this checkout through a `file:` dependency, since no
 * `mist` package is published.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UsageError, type CliIo } from './io.ts';

export const PLUGIN_KINDS = ['listener', 'authenticator', 'command'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** A plugin name: a URI scheme and a command name alike, and part of an npm package name. */
const NAME = /^[a-z][a-z0-9-]*$/;

/** This checkout of mist. */
const MIST_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

export const NEW_USAGE = 'mist new listener|authenticator|command NAME [--dir DIR]';

/**
 * Writes the `kind` template into `dir` (created; must not exist or be
 * empty) with `name` filled in. Returns the files written, relative to `dir`.
 */
export async function scaffold(kind: PluginKind, name: string, dir: string, mistRoot = MIST_ROOT): Promise<string[]> {
  if (!PLUGIN_KINDS.includes(kind)) throw new UsageError(`unknown plugin kind "${kind}" (known: ${PLUGIN_KINDS.join(', ')})`);
  if (!NAME.test(name)) {
    throw new UsageError(`invalid plugin name "${name}": use lowercase letters, digits and dashes, starting with a letter`);
  }
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (existing.length > 0) throw new Error(`${dir} exists and is not empty; choose another --dir`);

  const values = await placeholders(name, resolve(dir), mistRoot);
  const template = join(mistRoot, 'templates', kind);
  const files = await listFiles(template);
  for (const file of files) {
    const target = join(dir, fill(file, values));
    await mkdir(dirname(target), { recursive: true });
    const text = await readFile(join(template, file), 'utf8');
    await writeFile(target, fill(text, file.endsWith('.json') ? jsonEscaped(values) : values));
  }
  return files.map((file) => fill(file, values)).sort();
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
        '  npm install      # links mist from this checkout',
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

async function placeholders(name: string, dir: string, mistRoot: string): Promise<Record<string, string>> {
  const pkg = JSON.parse(await readFile(join(mistRoot, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const versions = { ...pkg.dependencies, ...pkg.devDependencies };
  return {
    __name__: name,
    __Name__: name.replace(/(^|-)([a-z0-9])/g, (_, _dash: string, c: string) => c.toUpperCase()),
    __MIST__: mistRoot,
    __DIR__: dir,
    // The generated package tests with the versions mist itself uses.
    __AVA_VERSION__: versions.ava!,
    __TSX_VERSION__: versions.tsx!,
    __TYPES_NODE_VERSION__: versions['@types/node']!,
  };
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
