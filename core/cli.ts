/**
 * The `mist` command line (SPEC §9). `mist --server` runs a server until
 * SIGINT or SIGTERM; other commands join as their issues land.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './cli-client.ts';
import { loadConfig } from './config.ts';
import { ErrorCodes, MistError } from './errors.ts';
import { createLogger } from './logger.ts';
import { MistServer } from './server.ts';

const USAGE = `Usage:
  mist --server [--listeners tcp://127.0.0.1:1445,…] [--log-level TRACE|DEBUG|INFO|WARN|ERROR|FATAL]
                [--config FILE]
${CLIENT_USAGE}
  mist --version | -v
  mist --help | -h`;

/** Exit codes: 0 success, 1 failure at run time, 2 bad usage or configuration. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first !== undefined && isClientCommand(first)) return runClientCommand(first, rest);
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (positionals.length > 0) return usageError(`unknown command "${positionals[0]}"`);
  if (!values.server) return usageError('nothing to do');
  return serve({ config: values.config, listeners: values.listeners, logLevel: values['log-level'] });
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'boolean' },
      listeners: { type: 'string' },
      'log-level': { type: 'string' },
      config: { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

async function serve(flags: { config?: string; listeners?: string; logLevel?: string }): Promise<number> {
  // Listen for signals from the start, so that one arriving during start-up still ends in a clean stop.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let server: MistServer | undefined;
  try {
    const config = await loadConfig(flags);
    server = new MistServer(config, createLogger(config.logLevel));
    if (config.file) server.logger.info({ file: config.file }, 'config loaded');
    await server.start();
  } catch (err) {
    if (!(err instanceof MistError)) throw err;
    // Listener URIs that came from the config file: say which file.
    const file = server?.config.file;
    const where = err.code === ErrorCodes.UNKNOWN_SCHEME && file && !flags.listeners ? ` (${file}: listeners)` : '';
    process.stderr.write(`mist: ${err.message}${where}\n`);
    return 2;
  }
  server.logger.info({ version: version() }, 'mist is ready');
  const signal = await stopped;
  server.logger.info({ signal }, 'shutting down');
  await server.close();
  return 0;
}

function usageError(message: string): number {
  process.stderr.write(`mist: ${message}\n${USAGE}\n`);
  return 2;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
