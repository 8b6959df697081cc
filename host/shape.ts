/**
 * The one validator for what people write: a config file (config-schema.ts)
 * and a plugin's options (checked against the shape the plugin declares
 * before its `register` runs). A value that does not fit stops start-up
 * with a {@link ShapeError} naming its key path (`limits.maxTags`,
 * `options.every`), instead of surfacing later as odd behaviour.
 *
 * @example
 * ```ts
 * export default definePlugin({
 *   name: 'greeter',
 *   options: {
 *     greeting: { type: 'string', default: 'hello' },
 *     every: { type: 'integer', min: 1 },
 *   },
 *   register(api, options) {
 *     options.greeting; // string
 *     options.every; // number | undefined
 *   },
 * });
 * ```
 */
import { ShapeError } from '../core/errors.ts';

/** The value types an option may have. `strings` is a list of strings; `object` any JSON object; `any` anything. */
export type OptionType = 'string' | 'number' | 'integer' | 'boolean' | 'strings' | 'object' | 'any';

/** One option: its type, whether it must be given, its default, and bounds for numbers. */
export interface OptionSpec {
  type: OptionType;
  /** The option must be given (a `default` makes this moot). Default false. */
  required?: boolean;
  /** Used when the option is not given. */
  default?: unknown;
  /** Smallest value, for `number` and `integer`. */
  min?: number;
  /** Largest value, for `number` and `integer`. */
  max?: number;
  /** Allowed values, for `string`. */
  oneOf?: readonly string[];
  /** One line for humans; shown in error messages. */
  description?: string;
}

/** The options a plugin accepts, by key. Keys not declared are refused. */
export type OptionsShape = Readonly<Record<string, OptionSpec>>;

type ValueOf<T extends OptionType> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'strings'
        ? string[]
        : T extends 'object'
          ? Record<string, unknown>
          : unknown;

/** The typed options a shape describes: given-or-defaulted keys are present, the rest may be undefined. */
export type OptionsOf<S extends OptionsShape> = {
  [K in keyof S]: S[K] extends { required: true } | { default: NonNullable<unknown> }
    ? ValueOf<S[K]['type']>
    : ValueOf<S[K]['type']> | undefined;
};

/** What the config file's keys need beyond a plugin option's spec. */
export interface Spec extends OptionSpec {
  /** Turns the value as written into the one checked and kept (trimmed, upper-cased…); may throw {@link ShapeError} itself. */
  parse?: (value: unknown, key: string) => unknown;
  /** For `string`: a pattern the value must match. */
  pattern?: RegExp;
  /** What to say when the value does not fit or is missing, in place of the type's own words: `must be a positive integer`. */
  must?: string;
  /** For `object`: its keys, each checked in turn. */
  keys?: Readonly<Record<string, Spec>>;
  /** For `object` with `keys`: what a key is called when an unknown one is refused (`limit`). Default `key`. */
  noun?: string;
}

/** Checks a plugin's options (`raw` may be absent) against its shape; returns them with defaults filled in. */
export function checkOptions<S extends OptionsShape>(shape: S, raw: unknown): OptionsOf<S> {
  return checkShape(shape, raw, 'options', 'option') as OptionsOf<S>;
}

/**
 * Checks the object `raw` (absent: empty) against `keys` and returns the
 * keys given or defaulted, checked. `name` names the object in messages,
 * `noun` what an unknown key of it is called, and `prefix` starts its keys'
 * paths. Throws {@link ShapeError}.
 */
export function checkShape(
  keys: Readonly<Record<string, Spec>>,
  raw: unknown,
  name: string,
  noun: string,
  prefix = `${name}.`,
): Record<string, unknown> {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new ShapeError(name, 'must be an object');
  const given = input as Record<string, unknown>;
  const known = Object.keys(keys);
  const path = (key: string): string => prefix + key;
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw new ShapeError(path(key), `is not a known ${noun} (known: ${known.join(', ') || 'none'})`);
  }
  const result: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(keys)) {
    const value = given[key] === undefined ? spec.default : given[key];
    if (value === undefined) {
      if (spec.required) throw new ShapeError(path(key), spec.must ?? `is required${spec.description ? ` (${spec.description})` : ''}`);
      continue;
    }
    result[key] = checkValue(spec, value, path(key));
  }
  return result;
}

/** `value` as `spec` keeps it, or a {@link ShapeError} naming `key`. */
function checkValue(spec: Spec, raw: unknown, key: string): unknown {
  const value = spec.parse ? spec.parse(raw, key) : raw;
  if (spec.keys && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return checkShape(spec.keys, value, key, spec.noun ?? 'key');
  }
  const problem = mismatch(spec, value);
  if (problem) throw new ShapeError(key, spec.must ?? problem);
  return value;
}

/** What is wrong with `value` for `spec`, or undefined. */
function mismatch(spec: Spec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.oneOf && !spec.oneOf.includes(value)) return `must be one of ${spec.oneOf.join(', ')}`;
      if (spec.pattern && !spec.pattern.test(value)) return `must match ${spec.pattern}`;
      return undefined;
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a${spec.type === 'integer' ? 'n integer' : ' number'}`;
      if (spec.type === 'integer' && !Number.isSafeInteger(value)) return 'must be an integer';
      if (spec.min !== undefined && value < spec.min) return `must be at least ${spec.min}`;
      if (spec.max !== undefined && value > spec.max) return `must be at most ${spec.max}`;
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string') ? undefined : 'must be a list of strings';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'must be an object';
    case 'any':
      return undefined;
  }
}
