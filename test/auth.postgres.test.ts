/**
 * postgres:// end to end against the real PostgreSQL on 127.0.0.1:5432
 * (database `test`): hostile tokens through admin commands, no password or
 * token in the log, and a database that goes away and comes back — through
 * a TCP proxy this test stops and starts, so the shared server is never touched.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { STORE_UNAVAILABLE } from '../core/auth.ts';
import { ErrorCodes, type MistError } from '../core/errors.ts';
import { PostgresAuthenticator } from '../plugins/authenticators/postgres.authenticator.ts';
import { HOSTILE } from './authenticators.contract.ts';
import { ADMIN, authScene } from './helpers/auth.ts';
import { POSTGRES_BASE, postgresSchema, postgresTestsRun } from './helpers/postgres.ts';
import { eventually, startTestServer } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

const it = (await postgresTestsRun()) ? test : test.skip;
const PASSWORD = 'pw-never-logged-42';
const TOKEN = 'tok-pg-8d2c';

/** The test database's URI with a password (ignored under trust auth) and the `?db=` form of the database. */
function withPassword(uri: string): string {
  const url = new URL(uri);
  url.password = PASSWORD;
  url.searchParams.set('db', url.pathname.slice(1));
  url.pathname = '';
  return url.href;
}

test('the password-bearing URI parses as the db query form', (t) => {
  const url = new URL(withPassword('postgres://postgres@127.0.0.1:5432/test?schema=s'));
  t.is(url.searchParams.get('db'), 'test');
  t.is(url.password, PASSWORD);
});

it('tokens with quotes, SQL and unicode round-trip through admin commands and auth; no token or password is logged', async (t) => {
  const { uri } = postgresSchema(t);
  const { admin, user, logs, assertNoTokensLogged } = await authScene(t, { authenticator: withPassword(uri) });
  for (const token of HOSTILE) {
    t.deepEqual(await admin.request({ command: 'register', tags: ["it's", token], data: token }), { command: 'register', data: 'success' }, token);
  }
  for (const token of HOSTILE) {
    t.deepEqual(await admin.request({ command: 'tags', data: token }), { command: 'tags', tags: [token, "it's"].sort() }, token);
    const client = await user(token);
    t.is((await client.request({ command: 'subscribe', tags: [token] })).data, 'success', token);
    t.deepEqual(await client.request({ command: 'subscribe', tags: ['other'] }), { command: 'subscribe', error: 'not permitted to use tags: other' });
  }
  t.deepEqual(await admin.request({ command: 'register', tags: ['a'], data: HOSTILE[1] }), { command: 'register', error: 'token already exists' });
  t.deepEqual(await admin.request({ command: 'unregister', data: HOSTILE[1] }), { command: 'unregister', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: HOSTILE[0] }), { command: 'tags', tags: [HOSTILE[0]!, "it's"].sort() });
  // The start-up line names the database, password masked.
  const line = logs.find((entry) => entry.msg === 'authentication required');
  t.truthy(line);
  t.regex(String(line!.authenticator), /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
  t.false(JSON.stringify(logs).includes(PASSWORD));
  // Tokens made only of common words cannot be searched for in a log; the distinctive ones must be absent.
  assertNoTokensLogged(HOSTILE.filter((token) => token.length > 12));
});

it('the database going away: admin commands and new auths get errors, the server and its connections carry on, and recover when it is back', async (t) => {
  const proxy = await Proxy.start(t, 5432);
  const base = new URL(POSTGRES_BASE);
  base.port = String(proxy.port);
  const { uri } = postgresSchema(t, base.href);
  const { admin, user, anonymous, server, logs } = await authScene(t, { authenticator: uri });
  await admin.request({ command: 'register', tags: ['a'], data: TOKEN });
  const live = await user(TOKEN);

  await proxy.stop();
  // The pool's idle connections are cut: reported, not fatal.
  await eventually(() => logs.some((line) => line.msg === 'idle database connection lost; the pool will reconnect'), WAIT_MS, 'pool error logged');
  for (const request of [
    { command: 'register', tags: ['b'], data: 'tok-pg-new' },
    { command: 'set', tags: ['b'], data: TOKEN },
    { command: 'unset', tags: ['a'], data: TOKEN },
    { command: 'unregister', data: TOKEN },
    { command: 'tags', data: TOKEN },
  ]) {
    t.deepEqual(await admin.request(request), { command: request.command, error: STORE_UNAVAILABLE }, request.command);
  }
  // A new connection cannot be checked: an error, which does not count as a failed auth.
  const late = await anonymous();
  for (let i = 0; i < 4; i++) t.deepEqual(await late.request({ command: 'auth', data: TOKEN }), { command: 'auth', error: STORE_UNAVAILABLE });
  t.false(late.closed);
  // The connection already authenticated keeps its permissions: the failed changes changed nothing.
  t.deepEqual(await live.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.is(server.state, 'running');
  t.true(logs.some((line) => line.msg === 'authenticator failed' && line.level === 'error'));

  await proxy.start();
  t.deepEqual(await admin.request({ command: 'set', tags: ['b'], data: TOKEN }), { command: 'set', data: 'success' });
  t.deepEqual(await admin.request({ command: 'tags', data: TOKEN }), { command: 'tags', tags: ['a', 'b'] });
  t.deepEqual(await late.request({ command: 'auth', data: TOKEN }), { command: 'auth', data: 'success' });
  t.is((await live.request({ command: 'subscribe', tags: ['b'] })).data, 'success');
  t.false(JSON.stringify(logs).includes(TOKEN));
});

it('several nodes creating one new table at once all start, and share its tokens', async (t) => {
  const url = new URL(postgresSchema(t).uri);
  const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresAuthenticator.open(url)));
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  await stores[0]!.addToken(TOKEN, ['a']);
  t.deepEqual(await stores[3]!.tagsFor(TOKEN), ['a']);
});

it('two nodes sharing a table: a change made on one reaches the other\'s connections when they auth again, or at once when repeated there', async (t) => {
  const { uri } = postgresSchema(t);
  const one = await authScene(t, { authenticator: uri });
  const two = await authScene(t, { authenticator: uri });
  await one.admin.request({ command: 'register', tags: ['a', 'b'], data: TOKEN });
  const user = await two.user(TOKEN);
  await user.request({ command: 'subscribe', tags: ['b'] });
  t.deepEqual(await one.admin.request({ command: 'unset', tags: ['b'], data: TOKEN }), { command: 'unset', data: 'success' });
  // Node two still holds the tags it read.
  t.is((await user.request({ command: 'subscribe', tags: ['a', 'b'] })).data, 'success');
  t.deepEqual(await user.request({ command: 'auth', data: TOKEN }), { command: 'auth', data: 'success' });
  t.deepEqual(await user.request({ command: 'list' }), { command: 'list', data: '[]' });
  t.deepEqual(await user.request({ command: 'subscribe', tags: ['b'] }), { command: 'subscribe', error: 'not permitted to use tags: b' });
  await user.request({ command: 'subscribe', tags: ['a'] });
  // Unregistered on node one; repeated on node two, it says so but still revokes there.
  t.deepEqual(await one.admin.request({ command: 'unregister', data: TOKEN }), { command: 'unregister', data: 'success' });
  t.deepEqual(await two.admin.request({ command: 'unregister', data: TOKEN }), { command: 'unregister', error: 'no such token' });
  t.deepEqual(await user.request({ command: 'list' }), { command: 'list', data: '[]' });
  t.deepEqual(await user.request({ command: 'publish', tags: ['a'], data: 'x' }), { command: 'publish', error: 'token is no longer registered' });
});

it('an unreachable database stops start-up with a clear error, password masked', async (t) => {
  const proxy = await Proxy.start(t, 5432);
  await proxy.stop();
  const error = await t.throwsAsync<MistError>(
    startTestServer(t, { authenticator: `postgres://postgres:${PASSWORD}@127.0.0.1:${proxy.port}/test`, token: ADMIN }),
  );
  t.is(error.code, ErrorCodes.AUTHENTICATOR);
  t.regex(error.message, /cannot open authenticator postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test: .*ECONNREFUSED/);
  t.false(error.message.includes(PASSWORD));
});

it('a schema or table name that is not a plain SQL name is refused at start-up', async (t) => {
  const error = await t.throwsAsync<MistError>(
    startTestServer(t, { authenticator: `${POSTGRES_BASE}?table=${encodeURIComponent('x"; DROP TABLE y; --')}`, token: ADMIN }),
  );
  t.regex(error.message, /\?table= must be a lower-case SQL name/);
});

/** A TCP proxy to 127.0.0.1:`target` that can be stopped (every connection cut) and started again on the same port. */
class Proxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(private readonly target: number) {}

  static async start(t: ExecutionContext, target: number): Promise<Proxy> {
    const proxy = new Proxy(target);
    t.teardown(() => proxy.stop());
    await proxy.start();
    return proxy;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
