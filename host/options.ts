/**
 * Plugin options: what a config file's `plugins: [{ module, options }]`
 * entry hands a plugin, checked against the shape the plugin declares before
 * its `register` runs, so a typo stops start-up with a message naming the
 * plugin and the key instead of surfacing later as odd behaviour.
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

/** An option value that does not fit its shape; `key` is the path, e.g. `options.every`. */
export class OptionsError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key} ${problem}`);
    this.name = 'OptionsError';
  }
}

/**
 * Checks `raw` (the config's `options`, possibly absent) against `shape`
 * and returns the options with defaults filled in. Throws {@link OptionsError}.
 */
export function checkOptions<S extends OptionsShape>(shape: S, raw: unknown): OptionsOf<S> {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new OptionsError('options', 'must be an object');
  const given = input as Record<string, unknown>;
  const known = Object.keys(shape);
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw new OptionsError(`options.${key}`, `is not a known option (known: ${known.join(', ') || 'none'})`);
  }
  const result: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(shape)) {
    const value = given[key] === undefined ? spec.default : given[key];
    if (value === undefined) {
      if (spec.required) throw new OptionsError(`options.${key}`, `is required${spec.description ? ` (${spec.description})` : ''}`);
      continue;
    }
    const problem = mismatch(spec, value);
    if (problem) throw new OptionsError(`options.${key}`, problem);
    result[key] = value;
  }
  return result as OptionsOf<S>;
}

/** What is wrong with `value` for `spec`, or undefined. */
function mismatch(spec: OptionSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.oneOf && !spec.oneOf.includes(value)) return `must be one of ${spec.oneOf.join(', ')}`;
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
