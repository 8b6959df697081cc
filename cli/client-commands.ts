/**
 * The client commands of the command line: `mist ping`,
 * `mist subscribe`, `mist publish`. Exit codes: 0 success, 1 failure at run
 * time (refused connection, bad token, error reply), 2 bad usage.
 */
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
// Only the light error module up front: `mist --server` and `--version` need not load the client and ws.
import type { Delivery, MistClient } from '../client/index.ts';
import { ClientErrorCodes, MistClientError } from '../client/errors.ts';
import { listenForStop, UsageError, type CliIo } from './io.ts';

export const CLIENT_USAGE = `  mist ping      [--host HOST:PORT | --url tcp://…|ws://…] [--token T]
  mist subscribe --tags a,b [--json] [--host … | --url …] [--token T]
  mist publish   --tags a,b --data TEXT|- [--host … | --url …] [--token T]`;

const USAGE = `Usage:\n${CLIENT_USAGE}`;

const DEFAULT_HOST = '127.0.0.1:1445';

const COMMON = {
  host: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS = {
  ping: COMMON,
  subscribe: { ...COMMON, tags: { type: 'string' }, json: { type: 'boolean' } },
  publish: { ...COMMON, tags: { type: 'string' }, data: { type: 'string' } },
} as const;

type ClientCommand = keyof typeof OPTIONS;

export function isClientCommand(name: string): name is ClientCommand {
  return Object.hasOwn(OPTIONS, name);
}

/** Flags the client commands share, parsed. */
interface Flags {
  host?: string;
  url?: string;
  token?: string;
  help?: boolean;
  tags?: string;
  json?: boolean;
  data?: string;
}


/** Runs `mist <command> …argv`; resolves with the exit code. */
export async function runClientCommand(command: ClientCommand, argv: string[], io: CliIo): Promise<number> {
  const { stdout, stderr } = io;
  const failure = (message: string): number => {
    stderr.write(`mist: ${message}\n`);
    return 1;
  };
  const usageError = (message: string): number => {
    stderr.write(`mist: ${message}\n${USAGE}\n`);
    return 2;
  };
  let flags: Flags;
  let url: string;
  try {
    const parsed = parseArgs({ args: argv, options: OPTIONS[command], allowPositionals: false, strict: true });
    flags = parsed.values as Flags;
    if (flags.help) {
      stdout.write(USAGE + '\n');
      return 0;
    }
    url = serverUrl(flags);
  } catch (err) {
    return usageError((err as Error).message);
  }
  const token = flags.token ?? io.env.MIST_TOKEN;
  try {
    switch (command) {
      case 'ping':
        await ping(url, token);
        stdout.write('pong\n');
        return 0;
      case 'subscribe':
        return await subscribe(url, token, tagsOf(flags), flags.json ?? false, io);
      case 'publish': {
        const tags = tagsOf(flags);
        if (flags.data === undefined) throw new UsageError('publish needs --data TEXT (or --data - to read it from stdin)');
        await publish(url, token, tags, flags.data === '-' ? await readAll(io.stdin) : flags.data);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message);
    if (err instanceof MistClientError) return failure(err.message);
    throw err;
  }
}

/** `--url`, or `--host HOST[:PORT]` as a TCP URL. */
function serverUrl(flags: Flags): string {
  if (flags.url !== undefined && flags.host !== undefined) throw new UsageError('give --host or --url, not both');
  if (flags.url !== undefined) {
    let url: URL;
    try {
      url = new URL(flags.url);
    } catch {
      throw new UsageError(`--url: not a URL: ${flags.url}`);
    }
    if (!['tcp:', 'tls:', 'ws:', 'wss:'].includes(url.protocol)) {
      throw new UsageError(`--url: unsupported scheme "${url.protocol.slice(0, -1)}" (known: tcp, tls, ws, wss)`);
    }
    return flags.url;
  }
  const host = flags.host ?? DEFAULT_HOST;
  if (host === '' || host.includes('/')) throw new UsageError(`--host: expected HOST or HOST:PORT, got "${host}"`);
  const url = new URL(`tcp://${host}`);
  if (!url.port) url.port = '1445';
  return url.href.replace(/\/$/, '');
}

function tagsOf(flags: Flags): string[] {
  const tags = (flags.tags ?? '')
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  if (tags.length === 0) throw new UsageError('--tags needs at least one tag (e.g. --tags a,b)');
  return tags;
}

async function ping(url: string, token: string | undefined): Promise<void> {
  const client = await open(url, token);
  try {
    await client.ping();
  } finally {
    await client.close();
  }
}

/** Prints every message until SIGINT/SIGTERM; reconnects by itself if the server goes away. */
async function subscribe(url: string, token: string | undefined, tags: string[], json: boolean, io: CliIo): Promise<number> {
  const { stdout, stderr } = io;
  let stop!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  const { stopped: stopRequested, unlisten } = listenForStop(io);
  void stopRequested.then(() => stop(0));
  // A reader that went away (`mist subscribe … | head -1`) is a normal end.
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') stderr.write(`mist: stdout: ${err.message}\n`);
    stop(err.code === 'EPIPE' ? 0 : 1);
  };
  stdout.on('error', onStdoutError);
  let client: MistClient | undefined;
  try {
    client = await open(url, token, true);
    const { dataText } = await import('../client/index.ts');
    client.on('message', (message) => stdout.write(format(message, json, dataText) + '\n'));
    client.on('disconnect', (err) => stderr.write(`mist: ${err.message}; reconnecting\n`));
    // Say why attempts fail, once per reason rather than once per attempt.
    let lastReason = '';
    client.on('reconnecting', ({ attempt, error }) => {
      if (attempt > 1 && error.message !== lastReason) stderr.write(`mist: ${error.message}; still trying\n`);
      lastReason = error.message;
    });
    client.on('reconnect', () => {
      lastReason = '';
      stderr.write(`mist: reconnected to ${url}, subscribed again\n`);
    });
    client.on('gap', () => stderr.write('mist: messages published while disconnected may be missing (the server could not resume)\n'));
    await client.subscribe(tags).catch((err: unknown) => {
      throw err instanceof MistClientError && err.code === ClientErrorCodes.REPLY
        ? new MistClientError(ClientErrorCodes.REPLY, `subscribe refused: ${err.message}`, { cause: err })
        : err;
    });
    stderr.write(`mist: subscribed to ${tags.join(',')} on ${url}\n`);
    return await stopped;
  } finally {
    unlisten();
    await client?.close();
    stdout.off('error', onStdoutError);
  }
}

/** A string's text as is; any other data as its JSON text, as published (digits and all). */
function format(message: Delivery, json: boolean, dataText: (message: Delivery) => string | undefined): string {
  if (json) return message.json;
  if (typeof message.data === 'string') return message.data;
  return dataText(message) ?? '';
}

/** Exits 0 only once the server accepted the message (the client confirms publishes with a ping). */
async function publish(url: string, token: string | undefined, tags: string[], data: string): Promise<void> {
  const client = await open(url, token);
  try {
    await client.publish(tags, data);
  } catch (err) {
    if (err instanceof MistClientError && err.code === ClientErrorCodes.REPLY) {
      throw new MistClientError(ClientErrorCodes.REPLY, `publish refused: ${err.message}`, { cause: err });
    }
    throw err;
  } finally {
    await client.close();
  }
}

async function open(url: string, token: string | undefined, reconnect = false): Promise<MistClient> {
  const { connect } = await import('../client/index.ts');
  try {
    return await connect(url, { token, reconnect });
  } catch (err) {
    // The only request connect() makes is `auth`: its refusal is a bad token.
    if (err instanceof MistClientError && err.code === ClientErrorCodes.REPLY) {
      throw new MistClientError(ClientErrorCodes.UNAUTHORIZED, `authentication failed: ${err.message}`);
    }
    throw err;
  }
}

/** A stream to its end, less one final newline (`echo hi | mist publish --data -` publishes "hi"). */
async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer | string));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
