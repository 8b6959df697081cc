/**
 * The shape of a mist config file, checked key by key by the validator of
 * shape.ts, so that a mistake is reported with its key path
 * (`limits.maxTags must be a positive integer`).
 */
import { ShapeError } from '../core/errors.ts';
import type { HistoryLimits } from '../core/history.ts';
import type { Limits } from '../core/limits.ts';
import { LOG_LEVELS, type LogLevel } from '../core/logger.ts';
import { checkShape, type Spec } from './shape.ts';
import { uriProblem, withoutPassword } from './uri.ts';

/** A plugin as written in the config: a module specifier, or one with options. */
export type PluginSetting = string | { module: string; options?: unknown };

/** What a config file may hold; every key is optional. */
export interface ConfigFile {
  listeners?: string[];
  logLevel?: LogLevel;
  limits?: Partial<Limits>;
  plugins?: PluginSetting[];
  /** The authenticator's URI (`memory://`, `postgres://…`); needs `token`. */
  authenticator?: string;
  /** The admin token, when an authenticator is configured. */
  token?: string;
  /** The backplane's URI (`redis://…`, `nats://…`), to run as one node of a cluster. */
  cluster?: string;
  /** Certificate and key (PEM file paths) for the tls, wss and https listeners that give none in their URI. */
  tls?: { cert: string; key: string };
  /**
   * The web pages (origins) that may use the server from a browser: `["*"]`
   * for any, else exact origins such as `https://app.example.com`. Default:
   * pages served from this machine (host/origins.ts).
   */
  allowedOrigins?: string[];
  /** How many recent messages are kept for clients to resume from; `false` turns history off (docs/protocol.md#resume). */
  history?: false | Partial<HistoryLimits>;
}

const POLICIES = ['drop', 'disconnect'] as const;
/** Longest flush delay accepted: anything near it is a mistake, not a latency trade-off. */
const MAX_FLUSH_INTERVAL_MS = 1000;
/** A URI's start: its scheme and `//`. */
const URI = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Any one character, newlines included: a non-empty string. */
const NON_EMPTY = /./s;

const limit: Spec = { type: 'integer', min: 1, must: 'must be a positive integer' };
/** Longest timer Node keeps (about 24.8 days); past it a timer fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const milliseconds: Spec = { type: 'integer', min: 1, max: MAX_TIMER_MS, must: `must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}` };
const pemFile: Spec = { type: 'string', required: true, pattern: NON_EMPTY, must: 'must be the path of a PEM file' };
const uri = (example: string): Spec => ({ type: 'string', parse: trimmed, pattern: URI, must: `must be a URI such as "${example}"` });

const CONFIG: Readonly<Record<keyof ConfigFile, Spec>> = {
  listeners: { type: 'any', parse: listeners },
  logLevel: { type: 'string', parse: upperCase, oneOf: LOG_LEVELS, must: `must be one of ${LOG_LEVELS.join(', ')}` },
  limits: {
    type: 'object',
    noun: 'limit',
    keys: {
      maxMessageBytes: limit,
      maxTags: limit,
      maxTagBytes: limit,
      maxSubscriptionsPerConnection: limit,
      maxBufferedBytes: limit,
      slowConsumerPolicy: { type: 'string', oneOf: POLICIES, must: 'must be "drop" or "disconnect"' },
      flushIntervalMs: {
        type: 'number',
        min: 0,
        max: MAX_FLUSH_INTERVAL_MS,
        must: `must be a number of milliseconds from 0 to ${MAX_FLUSH_INTERVAL_MS}`,
      },
      maxPendingInputBytes: limit,
      lineTimeoutMs: limit,
      // 0: no grace at all, every connection is destroyed at once.
      shutdownTimeoutMs: { type: 'integer', min: 0, must: 'must be a whole number of milliseconds, 0 or more' },
      authTimeoutMs: milliseconds,
      authFailureDelayMs: milliseconds,
      maxUnauthenticatedPerAddress: limit,
    } satisfies Record<keyof Limits, Spec>,
  },
  plugins: { type: 'any', parse: plugins },
  authenticator: uri('memory://'),
  token: { type: 'string', pattern: NON_EMPTY, must: 'must be a non-empty string' },
  cluster: uri('redis://127.0.0.1:6379'),
  tls: { type: 'object', keys: { cert: pemFile, key: pemFile } },
  allowedOrigins: { type: 'any', parse: origins },
  history: { type: 'any', parse: history },
};

const HISTORY: Readonly<Record<keyof HistoryLimits, Spec>> = { maxMessages: limit, maxBytes: limit, maxAgeMs: limit };

/** Checks a parsed config file (or flags); returns it typed or throws {@link ShapeError}. */
export function checkConfig(raw: unknown): ConfigFile {
  return checkShape(CONFIG, raw, 'the config', 'key', '') as ConfigFile;
}

/** `false` (off), `true` (the defaults) or some of the bounds. */
function history(value: unknown, key: string): false | Partial<HistoryLimits> {
  if (value === false) return false;
  if (value === true) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShapeError(key, 'must be false (history off) or an object of maxMessages, maxBytes, maxAgeMs');
  }
  return checkShape(HISTORY, value, key, 'history key');
}

function trimmed(value: unknown): unknown {
  return typeof value === 'string' ? value.trim() : value;
}

function upperCase(value: unknown): unknown {
  return typeof value === 'string' ? value.toUpperCase() : value;
}

/**
 * A list of URIs, or one comma-separated string as on the command line. A
 * mistake names the entry (not its index: `--listeners` has none), so the
 * message reads the same after the key or the flag.
 */
function listeners(value: unknown, key: string): string[] {
  const fromFlag = typeof value === 'string';
  const list = fromFlag ? value.split(',') : value;
  const expected = 'must be a non-empty list of listener URIs such as "tcp://127.0.0.1:1445"';
  if (!Array.isArray(list) || list.length === 0) throw new ShapeError(key, expected);
  return list.map((entry: unknown, i) => {
    if (typeof entry !== 'string') throw new ShapeError(key, `entry ${i + 1} of ${list.length} must be a listener URI string`);
    const uri = entry.trim();
    if (uri === '') throw new ShapeError(key, `entry ${i + 1} of ${list.length} is empty${fromFlag ? ' (a stray comma?)' : ''}`);
    const problem = uriProblem(uri);
    if (problem) throw new ShapeError(key, `"${withoutPassword(uri)}": ${problem}`);
    return uri;
  });
}

/**
 * `["*"]`, or origins as a browser sends them in `Origin` (`https://host` or
 * `http://host:port`), each kept in that form — lower case, without a default
 * port — so that a request's header is matched as it is; `null` (a sandboxed
 * page, a file) only when listed.
 */
function origins(value: unknown, key: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new ShapeError(key, 'must be a non-empty list of origins such as "https://app.example.com", or ["*"]');
  if (value.includes('*')) {
    if (value.length > 1) throw new ShapeError(key, 'must be ["*"] alone when it allows every origin');
    return ['*'];
  }
  return value.map((origin: unknown, i) => {
    const at = `${key}[${i}]`;
    if (origin === 'null') return origin;
    const url = typeof origin === 'string' && URL.canParse(origin) ? new URL(origin) : undefined;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.href !== `${url.origin}/`) {
      throw new ShapeError(at, 'must be an origin: http:// or https://, a host and maybe a port, nothing after (such as "https://app.example.com")');
    }
    return url.origin;
  });
}

/** Module specifiers, each alone or as `{ module, options }`. */
function plugins(value: unknown, key: string): PluginSetting[] {
  if (!Array.isArray(value)) throw new ShapeError(key, 'must be a list of module specifiers');
  return value.map((entry: unknown, i) => {
    if (typeof entry === 'string' && entry !== '') return entry;
    const at = `${key}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ShapeError(at, 'must be an object');
    const { module, options } = entry as { module?: unknown; options?: unknown };
    if (typeof module !== 'string' || module === '') {
      throw new ShapeError(`${at}.module`, 'must be a module specifier or an object { module, options }');
    }
    return { module, options };
  });
}
