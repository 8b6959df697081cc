/**
 * Flags as each command declares them: parsed by node:util's parseArgs,
 * filled from the environment when not given, and described in the help
 * (help.ts) from the same declaration. A mistyped flag or command gets a
 * close suggestion.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './io.ts';

export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in the help: `--host HOST[:PORT]`. */
  value?: string;
  /** One line for the help. */
  help: string;
  /** The default, as the help shows it. */
  default?: string;
  /** Environment variables read, in this order, when the flag is not given. */
  env?: readonly string[];
}

export type FlagSet = Readonly<Record<string, Flag>>;

/** Parsed flags: a string or a boolean by each flag's type, undefined when not given. */
export type Values<F extends Readonly<Record<string, Pick<Flag, 'type'>>>> = {
  [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : string;
};

/**
 * Parses `argv` against `flags`, then fills a string flag that was not given
 * from the first of its environment variables that is set and not empty
 * (`fromEnv` names those).
 * Throws {@link UsageError} for an unknown flag (with a suggestion), a
 * missing value, or a positional argument where none is allowed.
 */
export function parseFlags<F extends FlagSet>(
  flags: F,
  argv: string[],
  env: NodeJS.ProcessEnv,
  allowPositionals = false,
): { values: Values<F>; positionals: string[]; fromEnv: Set<keyof F> } {
  const options = Object.fromEntries(
    Object.entries(flags).map(([name, flag]) => [name, flag.short ? { type: flag.type, short: flag.short } : { type: flag.type }]),
  );
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(parseProblem(err as NodeJS.ErrnoException, flags));
  }
  const values = parsed.values as Record<string, unknown>;
  const fromEnv = new Set<keyof F>();
  for (const [name, flag] of Object.entries(flags)) {
    if (values[name] !== undefined || !flag.env) continue;
    const value = flag.env.map((variable) => env[variable]).find((text) => text !== undefined && text !== '');
    if (value === undefined) continue;
    values[name] = value;
    fromEnv.add(name);
  }
  return { values: values as Values<F>, positionals: parsed.positionals, fromEnv };
}

/** parseArgs's message, reworded where it helps: an unknown flag gets the closest known one. */
function parseProblem(err: NodeJS.ErrnoException, flags: FlagSet): string {
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(err.message)?.[1] : undefined;
  if (unknown === undefined) return err.message;
  const names = Object.keys(flags).map((name) => `--${name}`);
  return `unknown flag ${unknown}${didYouMean(unknown, names)}`;
}

/** ` (did you mean x?)` for the candidate closest to `word`, or '' when none is close. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  // A third of the word may be wrong: "pnig" → "ping", "--hots" → "--host"; "frobnicate" is near nothing.
  const close = best !== undefined && (bestDistance <= Math.max(1, Math.floor(word.length / 3)) || best.startsWith(word));
  return close ? ` (did you mean ${best}?)` : '';
}

/** Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: optimal string alignment. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/** `a,b` → `['a', 'b']`: trimmed, empty entries dropped; at least one required. */
export function tagList(text: string | undefined): string[] {
  const tags = (text ?? '')
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  if (tags.length === 0) throw new UsageError('--tags needs at least one tag (e.g. --tags a,b)');
  return tags;
}
