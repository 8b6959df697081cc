/**
 * The client commands of the command line: `mist ping`,
 * `mist subscribe`, `mist publish`. Exit codes: 0 success, 1 failure at run
 * time (refused connection, bad token, error reply), 2 bad usage.
 */
import type { Readable } from 'node:stream';
import type { Delivery, MistClient } from '../client/index.ts';
import { MistClientError } from '../client/errors.ts';
import { CONNECTION_FLAGS, connectionOf, failureMessage, open, refused, type Connection } from './connection.ts';
import { parseFlags, tagList, type Values } from './flags.ts';
import { CLIENT_FLAGS, printHelp, usageError } from './help.ts';
import { listenForStop, UsageError, type CliIo } from './io.ts';

type ClientCommand = keyof typeof CLIENT_FLAGS;
/** Every flag of any client command, for reading the parsed values of one. */
type AnyClientFlags = typeof CONNECTION_FLAGS & Record<'tags' | 'data', { type: 'string' }> & Record<'json', { type: 'boolean' }>;

export function isClientCommand(name: string): name is ClientCommand {
  return Object.hasOwn(CLIENT_FLAGS, name);
}

/** Runs `mist <command> …argv`; resolves with the exit code. */
export async function runClientCommand(command: ClientCommand, argv: string[], io: CliIo): Promise<number> {
  const { stdout, stderr } = io;
  let connection: Connection;
  let values: Values<AnyClientFlags>;
  try {
    const parsed = parseFlags(CLIENT_FLAGS[command], argv, io.env);
    values = parsed.values as Values<AnyClientFlags>;
    if (values.help) return printHelp(io, command);
    connection = connectionOf(values, parsed.fromEnv);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, command, err.message);
    throw err;
  }
  try {
    switch (command) {
      case 'ping':
        await ping(connection);
        stdout.write('pong\n');
        return 0;
      case 'subscribe':
        return await subscribe(connection, tagList(values.tags), values.json ?? false, io);
      case 'publish': {
        const tags = tagList(values.tags);
        if (values.data === undefined) throw new UsageError('publish needs --data TEXT (or --data - to read it from stdin)');
        await publish(connection, tags, values.data === '-' ? await readAll(io.stdin) : values.data);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, command, err.message);
    if (err instanceof MistClientError) {
      stderr.write(`mist: ${failureMessage(err, connection)}\n`);
      return 1;
    }
    throw err;
  }
}

async function ping(connection: Connection): Promise<void> {
  const client = await open(connection);
  try {
    await client.ping();
  } finally {
    await client.close();
  }
}

/** Prints every message until SIGINT/SIGTERM; reconnects by itself if the server goes away. */
async function subscribe(connection: Connection, tags: string[], json: boolean, io: CliIo): Promise<number> {
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
    client = await open(connection, true);
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
      stderr.write(`mist: reconnected to ${connection.url}, subscribed again\n`);
    });
    client.on('gap', () => stderr.write('mist: messages published while disconnected may be missing (the server could not resume)\n'));
    await client.subscribe(tags).catch((err: unknown) => {
      throw refused(err, 'subscribe');
    });
    stderr.write(`mist: subscribed to ${tags.join(',')} on ${connection.url}\n`);
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
async function publish(connection: Connection, tags: string[], data: string): Promise<void> {
  const client = await open(connection);
  try {
    await client.publish(tags, data);
  } catch (err) {
    throw refused(err, 'publish');
  } finally {
    await client.close();
  }
}

/** A stream to its end, less one final newline (`echo hi | mist publish --data -` publishes "hi"). */
async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer | string));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
