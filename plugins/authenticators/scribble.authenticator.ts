/**
 * `scribble://?db=DIR` — tokens in one JSON file, DIR/tokens.json, through
 * lowdb, whose writer (steno) replaces the file atomically (write to a
 * temporary file, then rename), so a crash leaves the old file or the new
 * one, never half of one. Survives restarts; suits a single node. One
 * server process per DIR: the file is read once at start-up.
 *
 * Changes run one at a time (a promise queue): each is applied to a copy of
 * the data, written, and only then made current, so concurrent admin
 * commands lose no update and a failed write changes nothing.
 *
 * The file: `{"tokens":{"TOKEN":["tag",…],…}}`.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Authenticator, CommandError, definePlugin, type TokenTags } from '../../host/index.ts';

/** The file inside DIR. */
export const SCRIBBLE_FILE = 'tokens.json';

export default definePlugin({
  name: 'scribble-authenticator',
  register(api) {
    api.authenticators.register('scribble', (url) => ScribbleAuthenticator.open(url));
  },
});

interface Data {
  tokens: Record<string, string[]>;
}

interface Database {
  data: Data;
  write(): Promise<void>;
}

export class ScribbleAuthenticator implements Authenticator {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The file, for messages. */
    readonly file: string,
    private readonly db: Database,
    /** The current tokens; replaced, never mutated, by each change once written. */
    private tokens: ReadonlyMap<string, readonly string[]>,
  ) {}

  /** Opens (creating if missing) DIR/tokens.json for a `scribble://?db=DIR` URL. */
  static async open(url: URL): Promise<ScribbleAuthenticator> {
    const dir = url.searchParams.get('db');
    if (!dir) throw new Error('scribble:// needs the database folder: scribble://?db=/path/to/dir');
    const file = join(resolve(dir), SCRIBBLE_FILE);
    const { Low } = await import('lowdb');
    const { JSONFile } = await import('lowdb/node');
    const db = new Low<Data>(new JSONFile<Data>(file), { tokens: {} });
    try {
      await mkdir(resolve(dir), { recursive: true });
      await db.read();
    } catch (err) {
      // V8's JSON errors quote the file, tokens and all: say where, not what.
      const why = err instanceof SyntaxError ? 'it is not valid JSON' : (err as Error).message;
      throw new Error(`cannot read token database ${file}: ${why}`, { cause: err });
    }
    return new ScribbleAuthenticator(file, db, parse(db.data, file));
  }

  addToken(token: string, tags: readonly string[]): Promise<void> {
    return this.change((tokens) => {
      if (tokens.has(token)) throw new CommandError('token already exists');
      tokens.set(token, distinct(tags));
    });
  }

  removeToken(token: string): Promise<void> {
    return this.change((tokens) => {
      if (!tokens.delete(token)) throw new CommandError('no such token');
    });
  }

  addTags(token: string, tags: readonly string[]): Promise<void> {
    return this.change((tokens) => {
      tokens.set(token, distinct([...held(tokens, token), ...tags]));
    });
  }

  removeTags(token: string, tags: readonly string[]): Promise<void> {
    return this.change((tokens) => {
      const removed = new Set(tags);
      tokens.set(token, held(tokens, token).filter((tag) => !removed.has(tag)));
    });
  }

  async tagsFor(token: string): Promise<string[] | undefined> {
    const tags = this.tokens.get(token);
    return tags && [...tags];
  }

  async listTokens(): Promise<TokenTags[]> {
    return [...this.tokens].map(([token, tags]) => ({ token, tags: [...tags] }));
  }

  /** Waits for the writes under way. */
  async close(): Promise<void> {
    await this.queue;
  }

  /** Applies `edit` to a copy of the tokens, writes it, then makes it current; one change at a time. */
  private change(edit: (tokens: Map<string, readonly string[]>) => void): Promise<void> {
    const run = async (): Promise<void> => {
      const next = new Map(this.tokens);
      edit(next);
      // fromEntries defines properties, so a token named "__proto__" is kept as data.
      this.db.data = { tokens: Object.fromEntries(next) as Record<string, string[]> };
      await this.db.write();
      this.tokens = next;
    };
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => {});
    return done;
  }
}

function held(tokens: ReadonlyMap<string, readonly string[]>, token: string): readonly string[] {
  const tags = tokens.get(token);
  if (!tags) throw new CommandError('no such token');
  return tags;
}

function distinct(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** Checks the file's content: `{"tokens":{TOKEN:[tag,…]}}`. */
function parse(data: unknown, file: string): Map<string, readonly string[]> {
  const bad = (why: string): Error => new Error(`token database ${file} is not valid: ${why}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('expected a JSON object');
  const tokens = (data as { tokens?: unknown }).tokens;
  if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens)) throw bad('"tokens" must be an object');
  const map = new Map<string, readonly string[]>();
  for (const [token, tags] of Object.entries(tokens)) {
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) throw bad('each token must map to a list of tags');
    map.set(token, distinct(tags as string[]));
  }
  return map;
}
