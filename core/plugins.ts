/**
 * Loads plugin modules — the built-in ones and those the config lists —
 * the same way, and runs their `register`.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DependencyContainer } from 'tsyringe';
import type { PluginEntry } from './config.ts';
import { ErrorCodes, MistError } from './errors.ts';
import { pluginApi, type MistPlugin } from './plugin.ts';

/** Imports each plugin in order and registers it; stops at the first failure, naming the plugin. */
export async function loadPlugins(container: DependencyContainer, entries: readonly PluginEntry[]): Promise<void> {
  for (const entry of entries) {
    const plugin = await importPlugin(entry);
    try {
      await plugin.register(pluginApi(container, plugin.name), entry.options);
    } catch (err) {
      if (err instanceof MistError) throw err;
      throw new MistError(ErrorCodes.PLUGIN, `plugin "${plugin.name}" failed to register: ${(err as Error).message}`, { cause: err });
    }
  }
}

async function importPlugin(entry: PluginEntry): Promise<MistPlugin> {
  let module: { default?: unknown };
  try {
    module = (await import(locate(entry))) as { default?: unknown };
  } catch (err) {
    throw new MistError(ErrorCodes.PLUGIN, `cannot load plugin "${entry.module}": ${(err as Error).message}`, { cause: err });
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

/** A URL to import: paths resolve from the entry's base folder, package names as Node resolves them from there. */
function locate({ module, base }: PluginEntry): string {
  if (module.startsWith('file:')) return module;
  if (module.startsWith('.') || isAbsolute(module)) return pathToFileURL(resolve(base, module)).href;
  return pathToFileURL(createRequire(join(base, 'package.json')).resolve(module)).href;
}
