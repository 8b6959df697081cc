/**
 * The `mist` command line. `mist --server` runs a server until
 * SIGINT or SIGTERM (or `io.stop`).
 *
 * Each command imports what it uses when it runs: `--version` reads
 * package.json and nothing more, the client commands never load the server,
 * and `--server` loads the storage and cluster libraries only for the URIs
 * it is given (docs/performance.md, start-up).
 */
import { isClientCommand, runClientCommand } from './client-commands.ts';
import type { ConfigFlags } from '../host/config.ts';
import { MistError } from '../core/errors.ts';
import { didYouMean, parseFlags, type Values } from './flags.ts';
import { COMMANDS, printHelp, SERVER_FLAGS, usageError, type CommandName } from './help.ts';
import { listenForStop, processIo, UsageError, type CliIo } from './io.ts';
import { mistPackage } from './mist-package.ts';
import type { MistServer } from '../host/server.ts';

/** Exit codes: 0 success, 1 failure at run time, 2 bad usage or configuration. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === 'help') return help(rest, io);
  if (first === 'new') return wantsHelp(rest) ? printHelp(io, 'new') : (await import('./new.ts')).newPlugin(rest, io);
  if (first === 'tokens') return (await import('./tokens.ts')).runTokens(rest, io);
  if (first !== undefined && isClientCommand(first)) return runClientCommand(first, rest, io);
  if (first !== undefined && !first.startsWith('-')) return usageError(io, undefined, unknownCommand(first));
  let values: Values<typeof SERVER_FLAGS>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseFlags(SERVER_FLAGS, argv, io.env, true));
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, undefined, err.message);
    throw err;
  }
  if (values.help) return printHelp(io, values.server ? 'server' : undefined);
  if (values.version) {
    io.stdout.write(version() + '\n');
    return 0;
  }
  if (positionals.length > 0) return usageError(io, undefined, `unexpected argument "${positionals[0]}"`);
  if (!values.server) return usageError(io, undefined, 'nothing to do: give a command, or --server to run a server');
  const { config, listeners, authenticator, token, cluster } = values;
  return serve({ config, listeners, logLevel: values['log-level'], authenticator, token, cluster }, io);
}

/** `mist help [COMMAND]`. */
function help(argv: string[], io: CliIo): number {
  const [command, ...extra] = argv;
  if (command === undefined) return printHelp(io);
  if (command === 'server' || command === '--server') return printHelp(io, 'server');
  if (!(COMMANDS as readonly string[]).includes(command)) return usageError(io, undefined, unknownCommand(command));
  if (extra.length > 0) return usageError(io, undefined, `unexpected argument "${extra[0]}"`);
  return printHelp(io, command === 'help' ? undefined : (command as CommandName));
}

function unknownCommand(name: string): string {
  return `unknown command "${name}"${didYouMean(name, COMMANDS)}`;
}

/** `mist new` parses its own flags; its help is asked for anywhere among them. */
function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
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

function version(): string {
  return mistPackage().version;
}
