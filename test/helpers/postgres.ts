/**
 * PostgreSQL for tests: the server on 127.0.0.1:5432, database `test`, user
 * `postgres` (override with MIST_TEST_POSTGRES, a postgres:// URI without
 * `?db`… parameters). Each test gets its own schema, dropped at teardown,
 * so parallel test files never collide.
 *
 * Tests that need PostgreSQL may be skipped only when it is unreachable and
 * MIST_REQUIRE_SERVICES is unset; with it set (CI), they run and fail.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import pg from 'pg';

/** The server tests use, as a URI without the `?schema=` a test adds. */
export const POSTGRES_BASE = process.env.MIST_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<boolean> | undefined;

/** Whether the test PostgreSQL accepts a connection (asked once per process). */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_BASE, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

/**
 * Whether tests needing PostgreSQL should run: true when it is reachable or
 * when MIST_REQUIRE_SERVICES demands it (then they fail if it is not).
 * Says why when they will be skipped.
 */
export async function postgresTestsRun(): Promise<boolean> {
  if (await postgresReachable()) return true;
  if (process.env.MIST_REQUIRE_SERVICES) return true;
  console.warn(`PostgreSQL tests skipped: ${redacted(POSTGRES_BASE)} is unreachable (set MIST_REQUIRE_SERVICES to make this a failure)`);
  return false;
}

/**
 * A postgres:// URI for an authenticator in a schema of its own, dropped at
 * teardown. `base` may point elsewhere (a proxy) than the schema is dropped through.
 */
export function postgresSchema(t: ExecutionContext, base = POSTGRES_BASE): { uri: string; schema: string } {
  const schema = `mist_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  t.teardown(() => dropSchema(schema));
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return { uri: url.href, schema };
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_BASE, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch {
    // Unreachable: nothing was created.
  } finally {
    await client.end().catch(() => {});
  }
}

function redacted(uri: string): string {
  const url = new URL(uri);
  if (url.password) url.password = '***';
  return url.href;
}
