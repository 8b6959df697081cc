/**
 * How the client commands (ping, subscribe, publish, tokens) reach a
 * server: the connection flags they share, read into a URL and the client's
 * options, and the client's failures worded for the command line.
 */
import { readFileSync } from 'node:fs';
// Only the light error module up front: `mist --server` and `--version` need not load the client and ws.
import type { ConnectOptions, MistClient } from '../client/index.ts';
import { ClientErrorCodes, MistClientError } from '../client/errors.ts';
import { uriProblem } from '../host/uri.ts';
import type { FlagSet, Values } from './flags.ts';
import { UsageError } from './io.ts';

export const DEFAULT_HOST = '127.0.0.1:1445';
/** Far below the client library's 30 s: a one-shot command in a script should fail soon. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest timer Node keeps; past it a timer fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const CONNECTION_FLAGS = {
  host: { type: 'string', value: 'HOST[:PORT]', help: 'the server, over TCP (port 1445 when none is given)', default: DEFAULT_HOST },
  url: {
    type: 'string',
    value: 'URL',
    help: 'the server as tcp://, tls://, ws:// or wss://HOST:PORT, instead of --host',
    env: ['MIST_URL'],
  },
  token: { type: 'string', value: 'T', help: 'authenticate with this token', env: ['MIST_TOKEN'] },
  ca: { type: 'string', value: 'FILE', help: "trust the server's certificate, or its CA's, in this PEM file (tls://, wss://)", env: ['MIST_CA'] },
  insecure: { type: 'boolean', help: "do not check the server's certificate (a self-signed one in development)" },
  timeout: {
    type: 'string',
    value: 'MS',
    help: 'fail when connecting, or a reply, takes longer than this',
    default: String(DEFAULT_TIMEOUT_MS),
    env: ['MIST_TIMEOUT'],
  },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies FlagSet;

export interface Connection {
  /** The server's URL, as shown in messages. */
  url: string;
  options: ConnectOptions;
}

/**
 * The connection the flags describe. `--host` and `--url` exclude each
 * other, but `--host` overrides a `$MIST_URL`; `--ca` and `--insecure` are
 * for TLS URLs only, unless `$MIST_CA` gave the certificate.
 */
export function connectionOf(values: Values<typeof CONNECTION_FLAGS>, fromEnv: ReadonlySet<string>): Connection {
  // A bad value is named as the user gave it: `--timeout`, or `$MIST_TIMEOUT`.
  const named = (flag: 'url' | 'ca' | 'timeout') => (fromEnv.has(flag) ? `$${CONNECTION_FLAGS[flag].env[0]}` : `--${flag}`);
  const urlFromEnv = fromEnv.has('url');
  if (values.host !== undefined && values.url !== undefined && !urlFromEnv) throw new UsageError('give --host or --url, not both');
  const useUrl = values.url !== undefined && !(urlFromEnv && values.host !== undefined);
  const url = useUrl ? checkedUrl(values.url!, named('url')) : hostUrl(values.host ?? DEFAULT_HOST);
  const secure = url.startsWith('tls:') || url.startsWith('wss:');
  if (!secure && (values.insecure || (values.ca !== undefined && !fromEnv.has('ca')))) {
    throw new UsageError(`${values.insecure ? '--insecure' : '--ca'} is for tls:// and wss:// servers, not ${url}`);
  }
  const timeoutMs = timeoutOf(values.timeout ?? String(DEFAULT_TIMEOUT_MS), named('timeout'));
  const options: ConnectOptions = { token: values.token, connectTimeoutMs: timeoutMs, requestTimeoutMs: timeoutMs };
  if (secure && values.insecure) options.tls = { rejectUnauthorized: false };
  else if (secure && values.ca !== undefined) options.tls = { ca: readCa(values.ca, named('ca')) };
  return { url, options };
}

function checkedUrl(text: string, name: string): string {
  const problem = uriProblem(text);
  if (problem) throw new UsageError(`${name}: "${text}": ${problem}`);
  const scheme = new URL(text).protocol.slice(0, -1);
  if (!['tcp', 'tls', 'ws', 'wss'].includes(scheme)) throw new UsageError(`${name}: unsupported scheme "${scheme}" (known: tcp, tls, ws, wss)`);
  return text;
}

/** `--host HOST[:PORT]` as a TCP URL. */
function hostUrl(host: string): string {
  const problem = host === '' || /[/?#@]/.test(host) ? 'expected HOST or HOST:PORT' : uriProblem(`tcp://${host}`);
  if (problem) throw new UsageError(`--host: "${host}": ${problem}`);
  const url = new URL(`tcp://${host}`);
  if (!url.port) url.port = '1445';
  return url.href.replace(/\/$/, '');
}

function timeoutOf(text: string, name: string): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < 1 || ms > MAX_TIMEOUT_MS) {
    throw new UsageError(`${name}: expected a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got "${text}"`);
  }
  return ms;
}

function readCa(file: string, name: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${name}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Opens the connection; a refused token fails as `authentication failed`. */
export async function open({ url, options }: Connection, reconnect = false): Promise<MistClient> {
  const { connect } = await import('../client/index.ts');
  try {
    return await connect(url, { ...options, reconnect });
  } catch (err) {
    // The only request connect() makes is `auth`: its refusal is a bad token.
    if (err instanceof MistClientError && err.code === ClientErrorCodes.REPLY) {
      throw new MistClientError(ClientErrorCodes.UNAUTHORIZED, `authentication failed: ${err.message}`);
    }
    throw err;
  }
}

/** The certificate checks that `--ca` or `--insecure` answer. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A client failure as one line for stderr, with what to do about it where the command line can help. */
export function failureMessage(err: MistClientError, { url, options }: Connection): string {
  if (err.code === ClientErrorCodes.TIMEOUT) return `no reply from ${url} within ${options.requestTimeoutMs} ms (--timeout)`;
  const cause = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (cause !== undefined && CERTIFICATE_ERRORS.has(cause)) {
    return `${err.message}; give --ca FILE to trust its certificate, or --insecure not to check it`;
  }
  return err.message;
}

/** A command refused by the server, named: `publish refused: …`. */
export function refused(err: unknown, command: string): unknown {
  return err instanceof MistClientError && err.code === ClientErrorCodes.REPLY
    ? new MistClientError(ClientErrorCodes.REPLY, `${command} refused: ${err.message}`, { cause: err })
    : err;
}
