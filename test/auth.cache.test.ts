/**
 * The Auth service's cache against its store: concurrent reads and changes,
 * and a store that fails.
 */
import test from 'ava';
import { Auth, STORE_UNAVAILABLE } from '../core/auth.ts';
import type { Authenticator, Grant } from '../core/authenticator.ts';
import { CommandError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { MemoryAuthenticator } from '../plugins/authenticators/memory.authenticator.ts';
import { logCapture, type LogLines } from './helpers/server.ts';

const ADMIN = 'admin-token-0a';
const TOKEN = 'user-token-1b';

/** A memory store whose reads can be held back until released. */
class SlowReads extends MemoryAuthenticator {
  waiting: Array<() => void> = [];
  hold = false;
  override async tagsFor(token: string): Promise<string[] | undefined> {
    const tags = await super.tagsFor(token);
    if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return tags;
  }
  release(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

test('a read that started before an unregister does not bring the token back into the cache', async (t) => {
  const store = new SlowReads();
  const auth = new Auth();
  auth.enable(store, ADMIN);
  await auth.register(TOKEN, ['a']);
  store.hold = true;
  const identifying = auth.identify(TOKEN);
  await new Promise((resolve) => setImmediate(resolve));
  store.hold = false;
  await auth.unregister(TOKEN);
  store.release();
  t.is(await identifying, undefined);
  t.is(auth.permitted(TOKEN), undefined);
  t.deepEqual(auth.refuseTags({ identity: { role: 'user', token: TOKEN } }, ['a']), { kind: 'forbidden', error: 'token is no longer registered' });
});

test('concurrent changes to one token leave the cache equal to the store', async (t) => {
  const store = new MemoryAuthenticator();
  const auth = new Auth();
  auth.enable(store, ADMIN);
  await auth.register(TOKEN, ['base']);
  const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
  await Promise.all([...tags.map((tag) => auth.addTags(TOKEN, [tag])), ...tags.slice(0, 10).map((tag) => auth.removeTags(TOKEN, [tag]))]);
  t.deepEqual([...auth.permitted(TOKEN)!].sort(), (await store.tagsFor(TOKEN))!.sort());
});

test('the admin token is compared by value, cannot be registered, and grants admin', async (t) => {
  const auth = new Auth();
  auth.enable(new MemoryAuthenticator(), ADMIN);
  t.deepEqual(await auth.identify(ADMIN), { role: 'admin' });
  t.false(auth.isAdminToken(ADMIN + 'x'));
  t.false(auth.isAdminToken(''));
  const error = await t.throwsAsync(auth.register(ADMIN, ['a']));
  t.true(error instanceof CommandError);
});

test('a failing store gives CommandError "authenticator unavailable" and is logged without any token', async (t) => {
  const logs: LogLines = [];
  const store = new MemoryAuthenticator();
  // Like PostgreSQL's unique-violation detail, the failure quotes the token.
  const fail = async (token: string): Promise<never> => {
    throw Object.assign(new Error(`Key (token)=(${token}) is broken`), { detail: `Key (token)=(${token})` });
  };
  store.tagsFor = fail;
  store.addToken = fail;
  const auth = new Auth();
  auth.enable(store, ADMIN, createLogger('TRACE', logCapture(logs)));
  for (const attempt of [auth.identify(TOKEN), auth.register(TOKEN, ['a']), auth.tagsOf(TOKEN)]) {
    const error = await t.throwsAsync(attempt);
    t.true(error instanceof CommandError);
    t.is(error.message, STORE_UNAVAILABLE);
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.true(logs.length >= 3);
  t.true(logs.every((line) => line.msg === 'authenticator failed'));
  t.false(JSON.stringify(logs).includes(TOKEN));
  t.true(JSON.stringify(logs).includes('Key (token)=(***) is broken'));
});

test('without an authenticator, every token is the unrestricted user and every tag is allowed', async (t) => {
  const auth = new Auth();
  t.false(auth.required);
  t.deepEqual(auth.initial, { role: 'user' });
  t.deepEqual(await auth.identify('anything'), { role: 'user' });
  t.is(auth.refuseTags({ identity: { role: 'user' } }, ['x']), undefined);
});

/** A store of signed tokens, as far as Auth can tell: each token answers a grant, and none can be changed. */
class Grants implements Authenticator {
  readonly grants = new Map<string, Grant>();
  async tagsFor(token: string): Promise<Grant | undefined> {
    return this.grants.get(token);
  }
  addToken = refuseChange;
  removeToken = refuseChange;
  addTags = refuseChange;
  removeTags = refuseChange;
  async close(): Promise<void> {}
}

async function refuseChange(): Promise<void> {
  throw new CommandError('read-only');
}

test('a grant gives an identity carrying its expiry, or the admin role; one already expired is no identity', async (t) => {
  const store = new Grants();
  const auth = new Auth();
  auth.enable(store, ADMIN);
  const expiresAt = Date.now() + 60_000;
  store.grants.set('user', { tags: ['a'], expiresAt });
  store.grants.set('admin', { tags: [], expiresAt, admin: true });
  store.grants.set('stale', { tags: ['a'], expiresAt: Date.now() - 1 });
  t.deepEqual(await auth.identify('user'), { role: 'user', token: 'user', expiresAt });
  t.deepEqual(await auth.identify('admin'), { role: 'admin', expiresAt });
  t.is(await auth.identify('stale'), undefined);
  t.is(await auth.tagsOf('stale'), undefined);
  t.is(auth.permitted('stale'), undefined);
});

test('a token is not trusted past its expiry, though still cached', async (t) => {
  const store = new Grants();
  const auth = new Auth();
  auth.enable(store, ADMIN);
  store.grants.set(TOKEN, { tags: ['a'], expiresAt: Date.now() + 60_000 });
  const identity = (await auth.identify(TOKEN))!;
  t.is(auth.refuseTags({ identity }, ['a']), undefined);
  t.deepEqual([...auth.permitted(TOKEN)!], ['a']);
  const later = readLater(2 * 60_000, () => ({ refusal: auth.refuseTags({ identity }, ['a']), permitted: auth.permitted(TOKEN) }));
  t.deepEqual(later, { refusal: { kind: 'unauthenticated', error: 'token expired' }, permitted: undefined });
});

/** What `read` returns with the clock `ms` ahead; synchronous, so no other test of this file sees that clock. */
function readLater<T>(ms: number, read: () => T): T {
  const now = Date.now;
  Date.now = () => now() + ms;
  try {
    return read();
  } finally {
    Date.now = now;
  }
}

// Serial, and so before every other test of this file: it moves the clock across awaits.
test.serial('expired tokens are dropped from the cache as it grows: it stays within twice the most tokens valid at once', async (t) => {
  const store = new Grants();
  const auth = new Auth();
  auth.enable(store, ADMIN);
  // White-box: the cache's size is what this test is about, and nothing public shows it.
  const cache = (auth as unknown as { cache: Map<string, unknown> }).cache;
  const now = Date.now;
  let ahead = 0;
  Date.now = () => now() + ahead;
  t.teardown(() => {
    Date.now = now;
  });
  // Rounds of 1000 tokens, each round's expired before the next: 20 000 seen, never more than 1000 valid.
  let refused = 0;
  for (let round = 0; round < 20; round++) {
    const expiresAt = Date.now() + 60_000;
    for (let i = 0; i < 1000; i++) {
      store.grants.set(`${round}-${i}`, { tags: ['a'], expiresAt });
      if (!(await auth.identify(`${round}-${i}`))) refused++;
    }
    ahead += 2 * 60_000;
  }
  t.is(refused, 0);
  t.true(cache.size <= 2048, `${cache.size} cached`);
  t.is(auth.permitted('19-999'), undefined);
});
