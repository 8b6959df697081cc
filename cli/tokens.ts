/**
 * `mist tokens list|register|tags|set|unset|unregister`: the admin
 * commands (docs/protocol.md), sent with the admin token. Exit codes: 0
 * done, 1 failed or refused by the server, 2 bad usage.
 */
import { randomBytes } from 'node:crypto';
import type { MistClient } from '../client/index.ts';
import { ClientErrorCodes, MistClientError } from '../client/errors.ts';
import { connectionOf, failureMessage, open, refused, type Connection } from './connection.ts';
import { didYouMean, parseFlags, tagList, type Values } from './flags.ts';
import { printHelp, TOKENS_FLAGS, usageError } from './help.ts';
import { UsageError, type CliIo } from './io.ts';

const SUBCOMMANDS = ['list', 'register', 'tags', 'set', 'unset', 'unregister'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

/** The subcommands that take `--tags`. */
const WITH_TAGS: ReadonlySet<Subcommand> = new Set(['register', 'set', 'unset']);

/** Bytes of a token `register` makes: 192 bits, 32 base64url characters. */
const NEW_TOKEN_BYTES = 24;

/** One token and its tags, as the `tokens` admin command lists them. */
interface TokenEntry {
  token: string;
  tags: string[];
}

interface Request {
  subcommand: Subcommand;
  /** The token the subcommand is about; for `register`, undefined to make one. */
  token: string | undefined;
  tags: string[];
  json: boolean;
}

export async function runTokens(argv: string[], io: CliIo): Promise<number> {
  let request: Request;
  let connection: Connection;
  try {
    const { values, positionals, fromEnv } = parseFlags(TOKENS_FLAGS, argv, io.env, true);
    if (values.help) return printHelp(io, 'tokens');
    request = requestOf(positionals, values);
    if (values.token === undefined) throw new UsageError('mist tokens needs the admin token: give --token T, or set $MIST_ADMIN_TOKEN');
    connection = connectionOf(values, fromEnv);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, 'tokens', err.message);
    throw err;
  }
  try {
    const client = await open(connection);
    try {
      await run(client, request, io);
    } finally {
      await client.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof MistClientError) {
      io.stderr.write(`mist: ${failureMessage(err, connection)}\n`);
      return 1;
    }
    throw err;
  }
}

function requestOf(positionals: string[], values: Values<typeof TOKENS_FLAGS>): Request {
  const [name, token, ...extra] = positionals;
  if (name === undefined) throw new UsageError(`give a tokens command: ${SUBCOMMANDS.join(', ')}`);
  if (!(SUBCOMMANDS as readonly string[]).includes(name)) {
    const hint = didYouMean(name, SUBCOMMANDS) || ` (known: ${SUBCOMMANDS.join(', ')})`;
    throw new UsageError(`unknown tokens command "${name}"${hint}`);
  }
  const subcommand = name as Subcommand;
  const unexpected = subcommand === 'list' ? token : extra[0];
  if (unexpected !== undefined) throw new UsageError(`unexpected argument "${unexpected}" after tokens ${subcommand}`);
  if (token === '' || (token === undefined && subcommand !== 'list' && subcommand !== 'register')) {
    throw new UsageError(`tokens ${subcommand} needs a TOKEN`);
  }
  if (!WITH_TAGS.has(subcommand) && values.tags !== undefined) throw new UsageError(`--tags is for register, set and unset, not ${subcommand}`);
  if (values.json && subcommand !== 'list' && subcommand !== 'tags') throw new UsageError(`--json is for list and tags, not ${subcommand}`);
  return { subcommand, token, tags: WITH_TAGS.has(subcommand) ? tagList(values.tags) : [], json: values.json ?? false };
}

async function run(client: MistClient, { subcommand, token, tags, json }: Request, io: CliIo): Promise<void> {
  const print = (line: string) => io.stdout.write(`${line}\n`);
  try {
    switch (subcommand) {
      case 'list': {
        const entries = await list(client);
        if (json) print(JSON.stringify(entries));
        else if (entries.length === 0) io.stderr.write('mist: no tokens registered\n');
        else printTable(entries, print);
        return;
      }
      case 'register':
        if (token === undefined) {
          const made = randomBytes(NEW_TOKEN_BYTES).toString('base64url');
          await client.register(made, tags);
          // The token alone on stdout, for `TOKEN=$(mist tokens register --tags a)`.
          print(made);
          io.stderr.write(`mist: registered a new token with tags: ${tags.join(', ')}\n`);
        } else {
          await client.register(token, tags);
          print(`registered with tags: ${tags.join(', ')}`);
        }
        return;
      case 'tags': {
        const held = await client.tags(token!);
        if (json) print(JSON.stringify(held));
        else for (const tag of held) print(tag);
        return;
      }
      case 'set':
        await client.set(token!, tags);
        print(`tags now: ${tagsText(await client.tags(token!))}`);
        return;
      case 'unset':
        await client.unset(token!, tags);
        print(`tags now: ${tagsText(await client.tags(token!))}`);
        return;
      case 'unregister':
        await client.unregister(token!);
        print('unregistered');
        return;
    }
  } catch (err) {
    throw refused(err, subcommand);
  }
}

/** Every token with its tags, sorted by token. */
async function list(client: MistClient): Promise<TokenEntry[]> {
  const reply = await client.request({ command: 'tokens' });
  try {
    const entries: unknown = JSON.parse(String(reply.data));
    if (Array.isArray(entries)) return entries as TokenEntry[];
  } catch {
    // Reported below, as any other reply that is not a list.
  }
  throw new MistClientError(ClientErrorCodes.REPLY, 'the server\'s "tokens" reply is not a list of tokens');
}

/** `TOKEN  tag, tag`, the tags aligned. */
function printTable(entries: TokenEntry[], print: (line: string) => void): void {
  const width = Math.max(...entries.map((entry) => entry.token.length));
  for (const { token, tags } of entries) print(`${token.padEnd(width)}  ${tagsText(tags)}`);
}

function tagsText(tags: readonly string[]): string {
  return tags.length === 0 ? '(none)' : tags.join(', ');
}
