/**
 * Configuration: defaults, overridden by the config file (found by
 * cosmiconfig under the name `mist`, or given with `--config`), overridden
 * by flags.
 */
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cosmiconfig, type Loader } from 'cosmiconfig';
import { DEFAULT_HISTORY, DEFAULT_LIMITS, DEFAULT_LISTENERS, DEFAULT_LOG_LEVEL } from './defaults.ts';
import { checkConfig, type ConfigFile } from './config-schema.ts';
import { ErrorCodes, MistError, ShapeError } from '../core/errors.ts';
import type { HistoryLimits } from '../core/history.ts';
import type { Limits } from '../core/limits.ts';
import type { LogLevel } from '../core/logger.ts';

/** A plugin to load: its module specifier, its options, and where a relative specifier starts from. */
export interface PluginEntry {
  module: string;
  options: unknown;
  /** The folder relative specifiers resolve from: the config file's, else the working directory. */
  base: string;
}

/** The configuration a server runs with, every value filled in. */
export interface MistConfig {
  listeners: string[];
  logLevel: LogLevel;
  limits: Limits;
  plugins: PluginEntry[];
  /** The authenticator's URI; when set, `token` is set too. */
  authenticator: string | undefined;
  /** The admin token. */
  token: string | undefined;
  /** The backplane's URI, when this node is part of a cluster. */
  cluster: string | undefined;
  /** Certificate and key paths for TLS listeners that give none in their URI (relative to the config file). */
  tls: { cert: string; key: string } | undefined;
  /** The web pages that may use the server: `["*"]`, exact origins, or undefined for pages served from this machine (host/origins.ts). */
  allowedOrigins: string[] | undefined;
  /** What is kept for clients to resume from; `false`: history off (no ids). */
  history: HistoryLimits | false;
  /** The config file that was read, if any. */
  file: string | undefined;
}

/** The flags of `mist --server` that override the config file. */
export interface ConfigFlags {
  config?: string;
  listeners?: string;
  logLevel?: string;
  authenticator?: string;
  token?: string;
  cluster?: string;
}

/** Where cosmiconfig looks, in the working directory, when no `--config` is given. */
const SEARCH_PLACES = [
  'package.json',
  '.mistrc',
  '.mistrc.json',
  '.mistrc.yaml',
  '.mistrc.yml',
  '.mistrc.js',
  '.mistrc.ts',
  '.mistrc.mjs',
  'mist.config.json',
  'mist.config.yaml',
  'mist.config.yml',
  'mist.config.js',
  'mist.config.ts',
  'mist.config.mjs',
];

/** mist runs under tsx, so a TypeScript config is imported like any module. */
const importDefault: Loader = async (filepath) => {
  const module = (await import(pathToFileURL(filepath).href)) as { default?: unknown };
  return module.default;
};

/** Reads the config file and merges it with `flags` over the defaults. */
export async function loadConfig(flags: ConfigFlags = {}, cwd = process.cwd()): Promise<MistConfig> {
  const explorer = cosmiconfig('mist', {
    searchPlaces: SEARCH_PLACES,
    loaders: { '.ts': importDefault, '.js': importDefault, '.mjs': importDefault },
  });
  const file = flags.config === undefined ? undefined : resolve(cwd, flags.config);
  let found: { config: unknown; filepath: string } | null;
  try {
    found = file === undefined ? await explorer.search(cwd) : await explorer.load(file);
  } catch (err) {
    throw new MistError(ErrorCodes.CONFIG, `cannot read config file ${file ?? cwd}: ${(err as Error).message}`, { cause: err });
  }
  const fromFile = check(found?.config, (key) => `${found!.filepath}: ${key}`);
  const { listeners, logLevel, authenticator, token, cluster } = flags;
  const fromFlags = check({ listeners, logLevel, authenticator, token, cluster }, flagOf);
  return buildConfig({ ...fromFile, ...definedOnly(fromFlags) }, found ? dirname(found.filepath) : cwd, found?.filepath);
}

/**
 * A complete configuration from a partial one (as a config file would hold
 * it), for embedding mist or testing it: `buildConfig({ listeners: ['tcp://127.0.0.1:0'] })`.
 */
export function buildConfig(input: ConfigFile = {}, base = process.cwd(), file?: string): MistConfig {
  const config = check(input, (key) => `config: ${key}`);
  if (config.authenticator !== undefined && config.token === undefined) {
    const where = file ? ` (${file})` : '';
    throw new MistError(ErrorCodes.CONFIG, `an authenticator needs an admin token: give --token or "token" in the config${where}`);
  }
  return {
    listeners: config.listeners ?? [...DEFAULT_LISTENERS],
    logLevel: config.logLevel ?? DEFAULT_LOG_LEVEL,
    limits: { ...DEFAULT_LIMITS, ...config.limits },
    plugins: (config.plugins ?? []).map((plugin) =>
      typeof plugin === 'string' ? { module: plugin, options: undefined, base } : { module: plugin.module, options: plugin.options, base },
    ),
    authenticator: config.authenticator,
    token: config.token,
    cluster: config.cluster,
    tls: config.tls && { cert: resolve(base, config.tls.cert), key: resolve(base, config.tls.key) },
    allowedOrigins: config.allowedOrigins,
    history: config.history === false ? false : { ...DEFAULT_HISTORY, ...config.history },
    file,
  };
}

/** Validates `raw`, naming the offending key as `where(key)` says. */
function check(raw: unknown, where: (key: string) => string): ConfigFile {
  try {
    return checkConfig(definedOnly(raw));
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    throw new MistError(ErrorCodes.CONFIG, `${where(err.key)} ${err.problem}`);
  }
}

/** The flag a config key came from: `logLevel` → `--log-level`, `listeners[2]` → `--listeners`. */
function flagOf(key: string): string {
  return '--' + key.replace(/\[\d+\]$/, '').replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Drops keys whose value is undefined, so unset flags override nothing. */
function definedOnly<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
