/**
 * The shape of a mist config file, checked key by key so that a mistake is
 * reported with its key path (`limits.maxTags must be a positive integer`).
 */
import { LOG_LEVELS, type LogLevel } from '../core/logger.ts';
import type { Limits } from '../core/limits.ts';

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
}

/** A config value that is not of its key's shape. */
export class ConfigShapeError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key} ${problem}`);
  }
}

const LIMIT_KEYS = ['maxMessageBytes', 'maxTags', 'maxTagBytes', 'maxSubscriptionsPerConnection', 'maxBufferedBytes'] as const;
const POLICIES = ['drop', 'disconnect'] as const;
/** Longest flush delay accepted: anything near it is a mistake, not a latency trade-off. */
const MAX_FLUSH_INTERVAL_MS = 1000;

/** Checks a parsed config file (or flags); returns it typed or throws {@link ConfigShapeError}. */
export function checkConfig(raw: unknown): ConfigFile {
  if (raw === null || raw === undefined) return {};
  const input = object(raw, 'the config');
  const known = ['listeners', 'logLevel', 'limits', 'plugins', 'authenticator', 'token', 'cluster', 'tls'];
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) throw new ConfigShapeError(key, `is not a known key (known: ${known.join(', ')})`);
  }
  const config: ConfigFile = {};
  if (input.listeners !== undefined) config.listeners = listeners(input.listeners);
  if (input.logLevel !== undefined) config.logLevel = logLevel(input.logLevel);
  if (input.limits !== undefined) config.limits = limits(input.limits);
  if (input.plugins !== undefined) config.plugins = plugins(input.plugins);
  if (input.authenticator !== undefined) config.authenticator = uri(input.authenticator, 'authenticator', 'memory://');
  if (input.token !== undefined) config.token = token(input.token);
  if (input.cluster !== undefined) config.cluster = uri(input.cluster, 'cluster', 'redis://127.0.0.1:6379');
  if (input.tls !== undefined) config.tls = tls(input.tls);
  return config;
}

function object(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigShapeError(key, 'must be an object');
  return value as Record<string, unknown>;
}

/** A list of URIs, or one comma-separated string as on the command line. */
function listeners(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  const expected = 'must be a non-empty list of listener URIs such as "tcp://127.0.0.1:1445"';
  if (!Array.isArray(list) || list.length === 0) throw new ConfigShapeError('listeners', expected);
  return list.map((uri: unknown, i) => {
    if (typeof uri !== 'string' || uri.trim() === '') throw new ConfigShapeError(`listeners[${i}]`, 'must be a listener URI string');
    return uri.trim();
  });
}

function uri(value: unknown, key: string, example: string): string {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim())) {
    throw new ConfigShapeError(key, `must be a URI such as "${example}"`);
  }
  return value.trim();
}

function tls(value: unknown): { cert: string; key: string } {
  const input = object(value, 'tls');
  for (const key of Object.keys(input)) {
    if (key !== 'cert' && key !== 'key') throw new ConfigShapeError(`tls.${key}`, 'is not a known key (known: cert, key)');
  }
  for (const key of ['cert', 'key'] as const) {
    if (typeof input[key] !== 'string' || input[key] === '') throw new ConfigShapeError(`tls.${key}`, 'must be the path of a PEM file');
  }
  return { cert: input.cert as string, key: input.key as string };
}

function token(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ConfigShapeError('token', 'must be a non-empty string');
  return value;
}

function logLevel(value: unknown): LogLevel {
  const level = typeof value === 'string' ? value.toUpperCase() : value;
  if (!LOG_LEVELS.includes(level as LogLevel)) throw new ConfigShapeError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  return level as LogLevel;
}

function limits(value: unknown): Partial<Limits> {
  const input = object(value, 'limits');
  const result: Partial<Limits> = {};
  for (const key of Object.keys(input)) {
    const v = input[key];
    if ((LIMIT_KEYS as readonly string[]).includes(key)) {
      if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new ConfigShapeError(`limits.${key}`, 'must be a positive integer');
      result[key as (typeof LIMIT_KEYS)[number]] = v as number;
    } else if (key === 'slowConsumerPolicy') {
      if (!POLICIES.includes(v as (typeof POLICIES)[number])) throw new ConfigShapeError('limits.slowConsumerPolicy', 'must be "drop" or "disconnect"');
      result.slowConsumerPolicy = v as (typeof POLICIES)[number];
    } else if (key === 'flushIntervalMs') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_FLUSH_INTERVAL_MS) {
        throw new ConfigShapeError('limits.flushIntervalMs', `must be a number of milliseconds from 0 to ${MAX_FLUSH_INTERVAL_MS}`);
      }
      result.flushIntervalMs = v;
    } else {
      const known = [...LIMIT_KEYS, 'slowConsumerPolicy', 'flushIntervalMs'];
      throw new ConfigShapeError(`limits.${key}`, `is not a known limit (known: ${known.join(', ')})`);
    }
  }
  return result;
}

function plugins(value: unknown): PluginSetting[] {
  if (!Array.isArray(value)) throw new ConfigShapeError('plugins', 'must be a list of module specifiers');
  return value.map((entry: unknown, i) => {
    if (typeof entry === 'string' && entry !== '') return entry;
    const expected = 'must be a module specifier or an object { module, options }';
    const item = object(entry, `plugins[${i}]`);
    if (typeof item.module !== 'string' || item.module === '') throw new ConfigShapeError(`plugins[${i}].module`, expected);
    return { module: item.module, options: item.options };
  });
}
