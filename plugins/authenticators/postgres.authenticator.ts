/**
 * `postgres://user[:password]@host:port?db=NAME` (or `…:port/NAME`) —
 * tokens in a PostgreSQL table through a `pg` connection pool. Creates its
 * table if missing. Every value goes to the server as a query parameter,
 * never into SQL text; the only identifiers in SQL text are the schema and
 * table names, which are checked and quoted.
 *
 * Query parameters of the URI:
 * - `db`: the database (or the URI's path); default: PostgreSQL's default, the user's name
 * - `schema`: the schema to keep the table in, created if missing; default `public`
 * - `table`: the table's name; default `mist_tokens`
 * - `pool`: the most connections to open; default 10
 *
 * Several nodes may share one table; see docs/auth.md for how changes reach
 * other nodes. A database that goes away makes the commands that need it
 * fail (the connections stay, the server runs on); the pool reconnects on
 * the next command once the database is back.
 */
import type { Pool, PoolConfig } from 'pg';
import { type Authenticator, CommandError, definePlugin, type Logger, type TokenTags } from '../../host/index.ts';

export default definePlugin({
  name: 'postgres-authenticator',
  register(api) {
    const open = (url: URL, context: { logger: Logger }) => PostgresAuthenticator.open(url, context.logger);
    api.authenticators.register('postgres', open);
    api.authenticators.register('postgresql', open);
  },
});

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** PostgreSQL text cannot hold NUL, so such a token or tag can never be stored. */
const NUL = '\u0000';

export class PostgresAuthenticator implements Authenticator {
  private constructor(
    private readonly pool: Pool,
    /** `"schema"."table"`, checked and quoted. */
    private readonly table: string,
  ) {}

  /** Connects, creates the schema and table if missing, and returns the store. */
  static async open(url: URL, logger?: Logger): Promise<PostgresAuthenticator> {
    const config = poolConfig(url);
    const schema = identifier(url.searchParams.get('schema') ?? 'public', 'schema');
    const table = `${schema}.${identifier(url.searchParams.get('table') ?? 'mist_tokens', 'table')}`;
    const pg = (await import('pg')).default;
    const pool = new pg.Pool(config);
    // An idle connection that breaks (the database restarted) is dropped by the pool; say so, do not crash.
    pool.on('error', (err) => logger?.warn({ error: err.message }, 'idle database connection lost; the pool will reconnect'));
    try {
      await idempotent(pool, `CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await idempotent(pool, `CREATE TABLE IF NOT EXISTS ${table} (token text PRIMARY KEY, tags text[] NOT NULL DEFAULT '{}')`);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PostgresAuthenticator(pool, table);
  }

  async addToken(token: string, tags: readonly string[]): Promise<void> {
    storable(token, tags);
    const result = await this.pool.query(
      `INSERT INTO ${this.table} (token, tags) VALUES ($1, ARRAY(SELECT DISTINCT unnest($2::text[]))) ON CONFLICT (token) DO NOTHING`,
      [token, tags],
    );
    if (result.rowCount === 0) throw new CommandError('token already exists');
  }

  async removeToken(token: string): Promise<void> {
    if (token.includes(NUL)) throw new CommandError('no such token');
    const result = await this.pool.query(`DELETE FROM ${this.table} WHERE token = $1`, [token]);
    if (result.rowCount === 0) throw new CommandError('no such token');
  }

  /** One statement, so that concurrent changes to one token, from any node, lose nothing. */
  async addTags(token: string, tags: readonly string[]): Promise<void> {
    storable(token, tags);
    const result = await this.pool.query(
      `UPDATE ${this.table} SET tags = ARRAY(SELECT DISTINCT unnest(tags || $2::text[])) WHERE token = $1`,
      [token, tags],
    );
    if (result.rowCount === 0) throw new CommandError('no such token');
  }

  async removeTags(token: string, tags: readonly string[]): Promise<void> {
    if (token.includes(NUL)) throw new CommandError('no such token');
    const result = await this.pool.query(
      `UPDATE ${this.table} SET tags = ARRAY(SELECT t FROM unnest(tags) AS t WHERE NOT t = ANY($2::text[])) WHERE token = $1`,
      [token, tags.filter((tag) => !tag.includes(NUL))],
    );
    if (result.rowCount === 0) throw new CommandError('no such token');
  }

  async tagsFor(token: string): Promise<string[] | undefined> {
    if (token.includes(NUL)) return undefined;
    const result = await this.pool.query<{ tags: string[] }>(`SELECT tags FROM ${this.table} WHERE token = $1`, [token]);
    // Sorted here, not by the database, so the order is by code unit whatever its collation.
    return result.rows[0]?.tags.sort();
  }

  async listTokens(): Promise<TokenTags[]> {
    const result = await this.pool.query<TokenTags>(`SELECT token, tags FROM ${this.table}`);
    return result.rows;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The pool's settings from the URI; the password, if any, goes to `pg` only. */
function poolConfig(url: URL): PoolConfig {
  const database = url.searchParams.get('db') ?? (decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined);
  const size = url.searchParams.get('pool');
  const max = size === null ? 10 : Number(size);
  if (!Number.isSafeInteger(max) || max <= 0) throw new Error('?pool= must be a positive integer');
  return {
    host: url.hostname || '127.0.0.1',
    port: url.port ? Number(url.port) : 5432,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    database,
    max,
    // A database that is away fails a command within seconds instead of holding it.
    connectionTimeoutMillis: 5000,
    query_timeout: 10000,
    idleTimeoutMillis: 30000,
    application_name: 'mist',
  };
}

/**
 * The errors of a `CREATE … IF NOT EXISTS` that lost a race with another
 * node's: a catalog unique violation, or the schema, table or the table's
 * row type already there.
 */
const LOST_CREATE_RACE = new Set(['23505', '42P06', '42P07', '42710']);

/**
 * Runs a `CREATE … IF NOT EXISTS`. Two nodes starting at once can both find
 * the object missing, and one then fails: once the other has created it,
 * running it again succeeds.
 */
async function idempotent(pool: Pool, sql: string): Promise<void> {
  try {
    await pool.query(sql);
  } catch (err) {
    if (!LOST_CREATE_RACE.has((err as { code?: string }).code ?? '')) throw err;
    await pool.query(sql);
  }
}

/** A schema or table name, checked (lower-case letters, digits, `_`) and quoted. */
function identifier(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`?${what}= must be a lower-case SQL name ([a-z_][a-z0-9_]*), got "${name}"`);
  return `"${name}"`;
}

function storable(token: string, tags: readonly string[]): void {
  if (token.includes(NUL) || tags.some((tag) => tag.includes(NUL))) {
    throw new CommandError('tokens and tags must not contain NUL characters');
  }
}
