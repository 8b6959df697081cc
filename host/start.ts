/** Starting a server the usual way: the built-in plugins, then the config's. */
import { buildConfig } from './config.ts';
import type { ConfigFile } from './config-schema.ts';
import type { MistPlugin } from './api.ts';
import { MistServer, type ServerOptions } from './server.ts';

/**
 * Starts a server from a partial configuration, as a config file would hold
 * it; what it leaves out takes the defaults. The built-in plugins are
 * registered unless `options.plugins` says otherwise (`[]`: a bare server).
 *
 * @example
 * ```ts
 * const server = await startServer({ listeners: ['tcp://127.0.0.1:0'] });
 * console.log(server.url('tcp'));
 * await server.close();
 * ```
 */
export async function startServer(config: ConfigFile = {}, options: ServerOptions = {}): Promise<MistServer> {
  const plugins = options.plugins ?? (await builtins());
  return new MistServer(buildConfig(config), { ...options, plugins }).start();
}

/**
 * The built-in preset, imported when first needed: its plugins import the
 * plugin API from this package, so a static import here would be a cycle.
 */
export async function builtins(): Promise<readonly MistPlugin[]> {
  return (await import('../plugins/preset.ts')).builtinPlugins;
}
