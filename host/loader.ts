/**
 * Registers plugins — the built-in ones and those the config lists — the
 * same way: check options, run `register`.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginEntry } from './config.ts';
import { ErrorCodes, MistError, ShapeError } from '../core/errors.ts';
import { pluginApi, type MistPlugin, type PluginHost } from './api.ts';
import { checkOptions } from './shape.ts';

/**
 * Registers `plugins` (already imported: the built-in preset), then imports
 * and registers each config entry, in order; stops at the first failure,
 * naming the plugin.
 */
export async function loadPlugins(host: PluginHost, plugins: readonly MistPlugin[], entries: readonly PluginEntry[]): Promise<void> {
  for (const plugin of plugins) await registerPlugin(host, plugin, undefined);
  for (const entry of entries) await registerPlugin(host, await importPlugin(entry), entry.options);
}

async function registerPlugin(host: PluginHost, plugin: MistPlugin, rawOptions: unknown): Promise<void> {
  const options = pluginOptions(plugin, rawOptions, host.config.file);
  try {
    await plugin.register(pluginApi(host, plugin.name), options);
  } catch (err) {
    if (err instanceof MistError) throw err;
    throw new MistError(ErrorCodes.PLUGIN, `plugin "${plugin.name}" failed to register: ${(err as Error).message}`, { cause: err });
  }
}

/** The options `register` gets: checked against the plugin's shape, then its `validate`. */
function pluginOptions(plugin: MistPlugin, raw: unknown, file: string | undefined): unknown {
  let options = raw;
  try {
    if (plugin.options) options = checkOptions(plugin.options, options);
    if (plugin.validate) options = plugin.validate(options);
  } catch (err) {
    const where = file ? ` (${file})` : '';
    const problem = err instanceof ShapeError ? err.message : `invalid options: ${(err as Error).message}`;
    throw new MistError(ErrorCodes.CONFIG, `plugin "${plugin.name}": ${problem}${where}`, { cause: err });
  }
  return options;
}

async function importPlugin(entry: PluginEntry): Promise<MistPlugin> {
  let module: { default?: unknown };
  try {
    module = (await import(locate(entry))) as { default?: unknown };
  } catch (err) {
    const message = `cannot load plugin "${entry.module}": ${(err as Error).message}${hint(err as NodeJS.ErrnoException)}`;
    throw new MistError(ErrorCodes.PLUGIN, message, { cause: err });
  }
  const plugin = module.default as Partial<MistPlugin> | undefined;
  if (typeof plugin?.name !== 'string' || typeof plugin.register !== 'function') {
    throw new MistError(
      ErrorCodes.PLUGIN,
      `"${entry.module}" is not a mist plugin: its default export must be { name, register } (see definePlugin)`,
    );
  }
  return plugin as MistPlugin;
}

/**
 * A URL to import: paths resolve from the entry's base folder (a folder is a
 * package: its package.json `main`, else its index), package names as Node
 * resolves them from there.
 */
function locate({ module, base }: PluginEntry): string {
  if (module.startsWith('file:')) return module;
  if (module.startsWith('.') || isAbsolute(module)) {
    const path = resolve(base, module);
    return pathToFileURL(isFolder(path) ? createRequire(join(path, 'package.json')).resolve(path) : path).href;
  }
  return pathToFileURL(createRequire(join(base, 'package.json')).resolve(module)).href;
}

/** Codes Node gives a TypeScript file it cannot run: no loader (Node 20), or type stripping refusing it (22 and later). */
const TYPESCRIPT_REFUSED = new Set([
  'ERR_UNKNOWN_FILE_EXTENSION',
  'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING',
  'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX',
  'ERR_INVALID_TYPESCRIPT_SYNTAX',
]);

/** What to do about a plugin that would not load, where the cause says: the usual ways a plugin folder is not ready. */
function hint(err: NodeJS.ErrnoException): string {
  const missing = /^Cannot find package '([^']+)' imported from (.+)$/m.exec(err.message);
  if (err.code === 'ERR_MODULE_NOT_FOUND' && missing) {
    return `. Run \`npm install\` in the plugin's folder: a plugin takes "${missing[1]}" from its own node_modules, or from a folder above it`;
  }
  if (err.code === 'MODULE_NOT_FOUND' && /valid "main" entry/.test(err.message)) {
    return ". Not built yet? Run `npm install` in the plugin's folder: a package made by `mist new` builds then (or with `npm run build`)";
  }
  if (TYPESCRIPT_REFUSED.has(err.code ?? '') && /\.[cm]?ts\b/.test(err.message)) {
    return '. A TypeScript plugin needs a TypeScript loader: build it to JavaScript, or run mist under tsx (`node --import tsx …`, see docs/plugins.md)';
  }
  return '';
}

function isFolder(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
