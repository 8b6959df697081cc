/**
 * The `mist` command line. `mist --server` runs a server until
 * SIGINT or SIGTERM (or `io.stop`).
 *
 * Each command imports what it uses when it runs: `--version` reads
 * package.json and nothing more, the client commands never load the server,
 * and `--server` loads the storage and cluster libraries only for the URIs
 * it is given (docs/performance.md, start-up).
 */
import { parseArgs } from 'node:util';
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './client-commands.ts';
import type { ConfigFlags } from '../host/config.ts';
import { MistError } from '../core/errors.ts';
import { listenForStop, processIo, type CliIo } from './io.ts';
import { mistPackage } from './mist-package.ts';
import type { MistServer } from '../host/server.ts';

const USAGE = `Usage:
  mist --server [--listeners tcp://127.0.0.1:1445,…] [--authenticator URI --token T]
                [--cluster URI] [--log-level TRACE|DEBUG|INFO|WARN|ERROR|FATAL] [--config FILE]
${CLIENT_USAGE}
  mist new listener|authenticator|command NAME [--dir DIR]
  mist --version | -v
  mist --help | -h`;

/** Exit codes: 0 success, 1 failure at run time, 2 bad usage or configuration. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  if (argv[0] === 'new') return (await import('./new.ts')).newPlugin(argv.slice(1), io);
  const [first, ...rest] = argv;
  if (first !== undefined && isClientCommand(first)) return runClientCommand(first, rest, io);
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (err) {
    return usageError(io, (err as Error).message);
  }
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    io.stdout.write(version() + '\n');
    return 0;
  }
  if (positionals.length > 0) return usageError(io, `unknown command "${positionals[0]}"`);
  if (!values.server) return usageError(io, 'nothing to do');
  const { config, listeners, authenticator, token, cluster } = values;
  return serve({ config, listeners, logLevel: values['log-level'], authenticator, token, cluster }, io);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'boolean' },
      listeners: { type: 'string' },
      'log-level': { type: 'string' },
      authenticator: { type: 'string' },
      token: { type: 'string' },
      cluster: { type: 'string' },
      config: { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function serve(flags: ConfigFlags, io: CliIo): Promise<number> {
  // Listen for signals from the start, so that one arriving during start-up still ends in a clean stop.
  const { stopped, unlisten } = listenForStop(io);
  try {
    const server = await start(flags, io);
    if (!server) return 2;
    server.logger.info({ version: version() }, 'mist is ready');
    const signal = await stopped;
    server.logger.info({ signal }, 'shutting down');
    await server.close();
    return 0;
  } finally {
    unlisten();
  }
}

/** A running server, or undefined once a bad configuration or a failed start is reported. */
async function start(flags: ConfigFlags, io: CliIo): Promise<MistServer | undefined> {
  const [{ loadConfig }, { createLogger }, { MistServer }, { builtins }] = await Promise.all([
    import('../host/config.ts'),
    import('../core/logger.ts'),
    import('../host/server.ts'),
    import('../host/start.ts'),
  ]);
  let server: MistServer | undefined;
  try {
    const config = await loadConfig(flags, io.cwd);
    // The process's stdout keeps pino's own destination, which stops logging quietly on EPIPE.
    const logger = createLogger(config.logLevel, io.stdout === process.stdout ? undefined : io.stdout);
    server = new MistServer(config, { logger, plugins: await builtins() });
    if (config.file) server.logger.info({ file: config.file }, 'config loaded');
    return await server.start();
  } catch (err) {
    if (!(err instanceof MistError)) throw err;
    // A URI that came from the config file, not a flag: say which file and key.
    const file = server?.config.file;
    const key = err.key as keyof ConfigFlags | undefined;
    const where = key && file && flags[key] === undefined ? ` (${file}: ${key})` : '';
    io.stderr.write(`mist: ${err.message}${where}\n`);
    return undefined;
  }
}

function usageError(io: CliIo, message: string): number {
  io.stderr.write(`mist: ${message}\n${USAGE}\n`);
  return 2;
}

function version(): string {
  return mistPackage().version;
}
