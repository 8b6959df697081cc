/**
 * The contract every authenticator keeps, as ava tests registered
 * once per store by {@link authenticatorContract}.
 */
import test, { type ExecutionContext } from 'ava';
import { grantOf, type Authenticator } from '../core/authenticator.ts';
import { CommandError } from '../core/errors.ts';

export interface StoreUnderTest {
  store: Authenticator;
  /** Closes the store and opens it again on the same data; only for stores that keep data. */
  reopen?: () => Promise<Authenticator>;
}

export type StoreFactory = (t: ExecutionContext) => Promise<StoreUnderTest>;

/** Tokens and tags that a careless store would mangle. */
export const HOSTILE = [
  "o'brien",
  "'; DROP TABLE mist_tokens; --",
  'quote"double',
  'back\\slash',
  'ünïcödé-トークン-🔑',
  '__proto__',
  'constructor',
  '%s %d $1 ?',
  ' spaced ',
];

/** The tags a store answers for `token`, in either of the forms `tagsFor` may answer. */
async function tagsOf(store: Authenticator, token: string): Promise<string[] | undefined> {
  return grantOf(await store.tagsFor(token))?.tags;
}

/** Registers the contract's tests for one store, each test name prefixed with `name`. */
export function authenticatorContract(name: string, open: StoreFactory, options: { skip?: boolean } = {}): void {
  const it = options.skip ? test.skip : test;

  async function fresh(t: ExecutionContext): Promise<Authenticator> {
    const { store } = await open(t);
    t.teardown(() => store.close().catch(() => {}));
    return store;
  }

  async function refuses(t: ExecutionContext, promise: Promise<unknown>, message: string): Promise<void> {
    const error = await t.throwsAsync(promise);
    t.true(error instanceof CommandError, `expected a CommandError, got ${String(error)}`);
    t.is(error.message, message);
  }

  it(`${name}: a registered token has its tags, sorted and distinct; an unknown token has none`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['b', 'a', 'b']);
    t.deepEqual(await tagsOf(store, 't1'), ['a', 'b']);
    t.is(await tagsOf(store, 'nope'), undefined);
    t.is(await tagsOf(store, ''), undefined);
  });

  it(`${name}: a token registered with no tags exists, with an empty list`, async (t) => {
    const store = await fresh(t);
    await store.addToken('bare', []);
    t.deepEqual(await tagsOf(store, 'bare'), []);
  });

  it(`${name}: registering an existing token is a CommandError and changes nothing`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['a']);
    await refuses(t, store.addToken('t1', ['z']), 'token already exists');
    t.deepEqual(await tagsOf(store, 't1'), ['a']);
  });

  it(`${name}: removing a token forgets it; removing an unknown one is a CommandError`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['a']);
    await store.addToken('t2', ['a']);
    await store.removeToken('t1');
    t.is(await tagsOf(store, 't1'), undefined);
    t.deepEqual(await tagsOf(store, 't2'), ['a']);
    await refuses(t, store.removeToken('t1'), 'no such token');
    // A removed token may be registered again, afresh.
    await store.addToken('t1', ['c']);
    t.deepEqual(await tagsOf(store, 't1'), ['c']);
  });

  it(`${name}: addTags adds without duplicates; to an unknown token it is a CommandError`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['b']);
    await store.addTags('t1', ['a', 'b', 'c', 'c']);
    t.deepEqual(await tagsOf(store, 't1'), ['a', 'b', 'c']);
    await refuses(t, store.addTags('nope', ['a']), 'no such token');
    t.is(await tagsOf(store, 'nope'), undefined);
  });

  it(`${name}: removeTags removes exactly those tags, keeps the token even when none are left; unknown token is a CommandError`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['a', 'b', 'c']);
    await store.removeTags('t1', ['b', 'not-held']);
    t.deepEqual(await tagsOf(store, 't1'), ['a', 'c']);
    await store.removeTags('t1', ['a', 'c']);
    t.deepEqual(await tagsOf(store, 't1'), []);
    await refuses(t, store.removeTags('nope', ['a']), 'no such token');
  });

  it(`${name}: tokens and tags with quotes, SQL, unicode and prototype names round-trip unharmed`, async (t) => {
    const store = await fresh(t);
    for (const token of HOSTILE) await store.addToken(token, [...HOSTILE, token]);
    for (const token of HOSTILE) t.deepEqual(await tagsOf(store, token), [...new Set([...HOSTILE, token])].sort(), token);
    await store.removeTags("o'brien", ["'; DROP TABLE mist_tokens; --"]);
    t.false((await tagsOf(store, "o'brien"))!.includes("'; DROP TABLE mist_tokens; --"));
    await store.removeToken("'; DROP TABLE mist_tokens; --");
    t.is(await tagsOf(store, "'; DROP TABLE mist_tokens; --"), undefined);
    // Everything else is still there: nothing was dropped.
    t.deepEqual(await tagsOf(store, '__proto__'), [...HOSTILE].sort());
  });

  it(`${name}: concurrent changes to one token lose no update`, async (t) => {
    const store = await fresh(t);
    await store.addToken('busy', []);
    const tags = Array.from({ length: 100 }, (_, i) => `tag-${String(i).padStart(3, '0')}`);
    await Promise.all(tags.map((tag) => store.addTags('busy', [tag])));
    t.deepEqual(await tagsOf(store, 'busy'), tags);
    await Promise.all(tags.slice(0, 50).map((tag) => store.removeTags('busy', [tag])));
    t.deepEqual(await tagsOf(store, 'busy'), tags.slice(50));
  });

  it(`${name}: listTokens gives every token with its tags, hostile ones unharmed, and nothing removed`, async (t) => {
    const store = await fresh(t);
    t.deepEqual(await store.listTokens!(), []);
    await store.addToken('t1', ['b', 'a']);
    await store.addToken('bare', []);
    await store.addToken('gone', ['x']);
    await store.removeToken('gone');
    for (const token of HOSTILE) await store.addToken(token, [token]);
    const listed = (await store.listTokens!()).map(({ token, tags }) => [token, [...tags].sort()] as const);
    const expected = [['t1', ['a', 'b']] as const, ['bare', []] as const, ...HOSTILE.map((token) => [token, [token]] as const)];
    const byToken = ([a]: readonly [string, unknown], [b]: readonly [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);
    t.deepEqual(listed.sort(byToken), expected.sort(byToken));
  });

  it(`${name}: the tags returned are a copy the caller may change`, async (t) => {
    const store = await fresh(t);
    await store.addToken('t1', ['a']);
    (await tagsOf(store, 't1'))!.push('b');
    t.deepEqual(await tagsOf(store, 't1'), ['a']);
  });

  it(`${name}: close resolves`, async (t) => {
    const { store } = await open(t);
    await t.notThrowsAsync(store.close());
  });
}

/** A store whose tokens are minted elsewhere (signed tokens), and a way to mint one it accepts. */
export interface MintingStore {
  store: Authenticator;
  mint(tags: string[]): Promise<string>;
}

/**
 * The contract of a store that holds no tokens: what applies of
 * {@link authenticatorContract}, whose tests begin by registering tokens.
 * A minted token has its tags, any other none, and every change is refused.
 */
export function mintedTokensContract(name: string, open: (t: ExecutionContext) => Promise<MintingStore>): void {
  async function fresh(t: ExecutionContext): Promise<MintingStore> {
    const opened = await open(t);
    t.teardown(() => opened.store.close().catch(() => {}));
    return opened;
  }

  test(`${name}: a minted token has its tags, sorted and distinct, hostile ones unharmed; any other token has none`, async (t) => {
    const { store, mint } = await fresh(t);
    t.deepEqual(await tagsOf(store, await mint(['b', 'a', 'b'])), ['a', 'b']);
    t.deepEqual(await tagsOf(store, await mint([])), []);
    t.deepEqual(await tagsOf(store, await mint(HOSTILE)), [...HOSTILE].sort());
    for (const token of ['nope', '', ...HOSTILE]) t.is(await tagsOf(store, token), undefined, token);
  });

  test(`${name}: every change, and listing the tokens, is a CommandError and changes nothing`, async (t) => {
    const { store, mint } = await fresh(t);
    const token = await mint(['a']);
    const changes = [store.addToken(token, ['z']), store.removeToken(token), store.addTags(token, ['z']), store.removeTags(token, ['a'])];
    // Nor can it list tokens: it holds none.
    for (const change of [...changes, store.listTokens!()]) {
      const error = await t.throwsAsync(change);
      t.true(error instanceof CommandError, `expected a CommandError, got ${String(error)}`);
    }
    t.deepEqual(await tagsOf(store, token), ['a']);
  });

  test(`${name}: the tags returned are a copy the caller may change`, async (t) => {
    const { store, mint } = await fresh(t);
    const token = await mint(['a']);
    (await tagsOf(store, token))!.push('b');
    t.deepEqual(await tagsOf(store, token), ['a']);
  });

  test(`${name}: close resolves`, async (t) => {
    const { store } = await open(t);
    await t.notThrowsAsync(store.close());
  });
}

/** The extra contract of a store that keeps its data: what it held comes back when reopened. */
export function persistenceContract(name: string, open: StoreFactory, options: { skip?: boolean } = {}): void {
  const it = options.skip ? test.skip : test;
  it(`${name}: tokens and tags survive closing and reopening`, async (t) => {
    const { store, reopen } = await open(t);
    await store.addToken('kept', ['a', 'b']);
    await store.addToken("o'brien", ['ü']);
    await store.addToken('gone', ['x']);
    await store.removeToken('gone');
    await store.removeTags('kept', ['b']);
    await store.addTags('kept', ['c']);
    const again = await reopen!();
    t.teardown(() => again.close().catch(() => {}));
    t.deepEqual(await tagsOf(again, 'kept'), ['a', 'c']);
    t.deepEqual(await tagsOf(again, "o'brien"), ['ü']);
    t.is(await tagsOf(again, 'gone'), undefined);
  });
}
