/**
 * What each command takes and says about itself: its flags (parsed from the
 * same declaration), its usage, a line on what it does, examples. `mist
 * --help`, `mist COMMAND --help` and `mist help COMMAND` print it; a usage
 * error prints the usage lines.
 */
import { DEFAULT_LISTENERS, DEFAULT_LOG_LEVEL } from '../host/defaults.ts';
import { CONNECTION_FLAGS } from './connection.ts';
import type { FlagSet } from './flags.ts';
import type { CliIo } from './io.ts';

const HELP_FLAG = CONNECTION_FLAGS.help;

export const SERVER_FLAGS = {
  server: { type: 'boolean', help: 'run a server until SIGINT or SIGTERM' },
  listeners: { type: 'string', value: 'URI,…', help: 'where clients connect; port 0 picks a free one', default: DEFAULT_LISTENERS.join(',') },
  'log-level': { type: 'string', value: 'LEVEL', help: 'TRACE, DEBUG, INFO, WARN, ERROR or FATAL', default: DEFAULT_LOG_LEVEL },
  authenticator: { type: 'string', value: 'URI', help: 'require tokens: memory://, scribble://?db=DIR, postgres://…, jwt://…' },
  token: { type: 'string', value: 'T', help: 'the admin token; required with --authenticator', env: ['MIST_ADMIN_TOKEN'] },
  cluster: { type: 'string', value: 'URI', help: 'join a cluster: redis://HOST:PORT or nats://HOST:PORT' },
  config: { type: 'string', value: 'FILE', help: 'the config file (default: mist.config.yaml, .mistrc… in the working folder)' },
  version: { type: 'boolean', short: 'v', help: 'print the version' },
  help: HELP_FLAG,
} as const satisfies FlagSet;

const TAGS = { type: 'string', value: 'a,b', help: 'the tags, comma-separated (required)' } as const;

export const CLIENT_FLAGS = {
  ping: CONNECTION_FLAGS,
  subscribe: {
    tags: { ...TAGS, help: 'the subscription: messages tagged with all of these (required)' },
    json: { type: 'boolean', help: 'print each whole message as JSON, not only its data' },
    ...CONNECTION_FLAGS,
  },
  publish: {
    tags: { ...TAGS, help: "the message's tags, comma-separated (required)" },
    data: { type: 'string', value: 'TEXT|-', help: 'the data, sent as a JSON string; - reads it from stdin (required)' },
    ...CONNECTION_FLAGS,
  },
} as const satisfies Record<string, FlagSet>;

export const TOKENS_FLAGS = {
  tags: { ...TAGS, help: 'the tags to give (register, set) or take (unset)' },
  json: { type: 'boolean', help: 'list, tags: print JSON ([{"token":…,"tags":[…]}], […])' },
  ...CONNECTION_FLAGS,
  token: { type: 'string', value: 'T', help: 'the admin token', env: ['MIST_ADMIN_TOKEN', 'MIST_TOKEN'] },
} as const satisfies FlagSet;

const NEW_FLAGS = {
  dir: { type: 'string', value: 'DIR', help: 'the folder to write (must not exist, or be empty)', default: 'mist-plugin-NAME' },
  help: HELP_FLAG,
} as const satisfies FlagSet;

interface CommandHelp {
  usage: string[];
  about: string;
  flags: FlagSet;
  examples: string[];
  more: string;
}

const HELP = {
  server: {
    usage: ['mist --server [--listeners URI,…] [--authenticator URI --token T] [--cluster URI] [--log-level LEVEL] [--config FILE]'],
    about: 'Runs a server until SIGINT or SIGTERM, then stops cleanly. Flags override the config file, which overrides the defaults.',
    flags: SERVER_FLAGS,
    examples: [
      'mist --server --listeners tcp://0.0.0.0:1445,ws://0.0.0.0:8888',
      "MIST_ADMIN_TOKEN=… mist --server --authenticator 'scribble://?db=/var/lib/mist'",
    ],
    more: 'Exit codes: 0 stopped cleanly, 2 bad usage or configuration, 1 other failures. More: docs/operations.md',
  },
  ping: {
    usage: ['mist ping [--host HOST:PORT | --url URL] [--token T]'],
    about: 'Sends ping; prints pong and exits 0 when the server answers.',
    flags: CLIENT_FLAGS.ping,
    examples: ['mist ping', 'mist ping --url tls://mist.internal:1445 --ca ca.pem', 'mist ping --url wss://127.0.0.1:8443 --insecure'],
    more: 'Exit codes: 0 pong, 1 failed (no connection, refused token, no reply in time), 2 bad usage. More: docs/cli.md',
  },
  subscribe: {
    usage: ['mist subscribe --tags a,b [--json] [--host HOST:PORT | --url URL] [--token T]'],
    about:
      "Subscribes to the set of tags and prints each message's data, one a line, until SIGINT or SIGTERM; " +
      'reconnects and subscribes again when the server goes away. Status lines go to stderr.',
    flags: CLIENT_FLAGS.subscribe,
    examples: ['mist subscribe --tags deploy', 'mist subscribe --tags deploy,app-42 --json | jq .data'],
    more: 'Exit codes: 0 stopped, 1 failed (first connection, refused token, refused subscribe), 2 bad usage. More: docs/cli.md',
  },
  publish: {
    usage: ['mist publish --tags a,b --data TEXT|- [--host HOST:PORT | --url URL] [--token T]'],
    about: 'Publishes the data to the tags and exits 0 once the server has accepted it.',
    flags: CLIENT_FLAGS.publish,
    examples: ["mist publish --tags deploy,app-42 --data 'v1.2.3 is live'", 'git log -1 --format=%s | mist publish --tags commits --data -'],
    more: 'Exit codes: 0 accepted, 1 failed or refused, 2 bad usage. More: docs/cli.md',
  },
  tokens: {
    usage: [
      'mist tokens list',
      'mist tokens register [TOKEN] --tags a,b     (no TOKEN: makes one and prints it)',
      'mist tokens tags TOKEN',
      'mist tokens set TOKEN --tags c',
      'mist tokens unset TOKEN --tags c',
      'mist tokens unregister TOKEN',
    ],
    about: "Manages the tokens of a server's authenticator, authenticated with the admin token.",
    flags: TOKENS_FLAGS,
    examples: [
      'export MIST_ADMIN_TOKEN=…',
      'WRITER=$(mist tokens register --tags news)',
      'mist tokens set "$WRITER" --tags sports',
      'mist tokens list',
    ],
    more: 'Exit codes: 0 done, 1 failed or refused (not the admin token, no such token…), 2 bad usage. More: docs/cli.md',
  },
  new: {
    usage: ['mist new listener|authenticator|command NAME [--dir DIR]'],
    about: 'Writes a plugin package, with a test against a real server, from the template of its kind.',
    flags: NEW_FLAGS,
    examples: ['mist new command hello && cd mist-plugin-hello && npm install && npm test'],
    more: 'Exit codes: 0 written, 1 the folder is not empty, 2 bad usage. More: docs/plugins.md',
  },
} as const satisfies Record<string, CommandHelp>;

export type CommandName = keyof typeof HELP;

/** The commands `mist` takes as its first argument (the server is `--server`). */
export const COMMANDS = ['ping', 'subscribe', 'publish', 'tokens', 'new', 'help'] as const;

/** `mist --help`: every command, then the server's flags. */
export function overview(): string {
  return [
    'mist: a tag-based publish/subscribe server, and a client for it.',
    '',
    'Usage:',
    '  mist --server [flags]                          run a server',
    '  mist ping [flags]                              check that a server answers',
    '  mist subscribe --tags a,b [flags]              print what is published to these tags',
    '  mist publish --tags a,b --data TEXT|- [flags]  publish a message',
    '  mist tokens list|register|tags|set|unset|…     manage tokens, with the admin token',
    '  mist new listener|authenticator|command NAME   scaffold a plugin',
    '  mist --version                                 print the version',
    '  mist COMMAND --help, mist help COMMAND         a command\'s flags and examples',
    '',
    'Server flags:',
    flagLines(SERVER_FLAGS),
    '',
    'Environment: MIST_ADMIN_TOKEN (--server --token, mist tokens); MIST_URL, MIST_TOKEN, MIST_CA,',
    'MIST_TIMEOUT (ping, subscribe, publish, tokens): each used when its flag is not given.',
    'More: README.md and docs/ (docs/cli.md: every command).',
  ].join('\n');
}

/** `mist COMMAND --help`. */
export function helpText(command: CommandName): string {
  const help: CommandHelp = HELP[command];
  return [
    usageLines(command),
    '',
    wrap(help.about),
    '',
    'Flags:',
    flagLines(help.flags),
    '',
    'Examples:',
    ...help.examples.map((line) => `  ${line}`),
    '',
    help.more,
  ].join('\n');
}

function usageLines(command: CommandName): string {
  return ['Usage:', ...HELP[command].usage.map((line) => `  ${line}`)].join('\n');
}

const USAGE = `Usage:\n  mist --server [flags]\n  mist ${COMMANDS.join('|')} …\n`;

/** A usage error: the message and the command's usage on stderr; exit code 2. */
export function usageError(io: CliIo, command: CommandName | undefined, message: string): number {
  const more = command === undefined ? 'mist --help' : command === 'server' ? 'mist --server --help' : `mist ${command} --help`;
  const usage = command === undefined ? USAGE : `${usageLines(command)}\n`;
  io.stderr.write(`mist: ${message}\n${usage}Run "${more}" for more.\n`);
  return 2;
}

/** One line a flag: `  --host HOST[:PORT]   the server… (default …; $MIST_HOST)`, aligned. */
function flagLines(flags: FlagSet): string {
  const rows = Object.entries(flags).map(([name, flag]) => {
    const names = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.value ? ` ${flag.value}` : ''}`;
    const notes = [flag.default === undefined ? '' : `default ${flag.default}`, ...(flag.env ?? []).map((variable) => `$${variable}`)].filter(Boolean);
    return [names, notes.length ? `${flag.help} (${notes.join('; ')})` : flag.help] as const;
  });
  const width = Math.max(...rows.map(([names]) => names.length));
  return rows.map(([names, text]) => `  ${names.padEnd(width)}  ${text}`).join('\n');
}

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width = 80): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line].join('\n');
}

/** Prints the help of `command` (an overview without one); exit code 0. */
export function printHelp(io: CliIo, command?: CommandName): number {
  io.stdout.write(`${command === undefined ? overview() : helpText(command)}\n`);
  return 0;
}
