/**
 * Authentication and permissions, decided here once for every
 * transport. The authenticator only stores tokens and their tags; this
 * service turns a token into an identity and answers, synchronously, whether
 * a connection may use a set of tags.
 *
 * Each token's tags are cached from its first successful `identify`, and the
 * admin commands change store and cache together through this service, so a
 * change reaches that token's live connections from their next command. A
 * change made to a shared store by another node reaches this node's
 * connections when they authenticate again (see docs/auth.md). A token that
 * expires (a signed one) is not trusted past its expiry, and dropped from
 * the cache once expired.
 *
 * Tokens never reach a log line: store faults are logged by their message
 * with every token in play masked, never with the store's error object
 * (a PostgreSQL error's `detail` quotes the offending key).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { grantOf, type Authenticator, type Grant, type TokenTags } from './authenticator.ts';
import { CommandError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Refusal } from './result.ts';

/**
 * Who a connection is. `user` without a token is the unrestricted user of a
 * server that has no authenticator; with a token, it may use that token's
 * tags only. `expiresAt` (ms since the epoch) is when the token that granted
 * the identity stops being valid: the session is closed then.
 */
export type Identity =
  | { role: 'anonymous' }
  | { role: 'user'; token?: string; expiresAt?: number }
  | { role: 'admin'; expiresAt?: number };

export type Role = Identity['role'];

/** Something that holds an identity: a session. */
export interface Authenticated {
  identity: Identity;
}

/** The reply to a command that needed the store while it was failing. */
export const STORE_UNAVAILABLE = 'authenticator unavailable, try again later';

/** A token's tags as this node last read them, and when the token expires, if it does. */
interface Permit {
  tags: ReadonlySet<string>;
  expiresAt?: number;
}

/** The cache is not pruned of expired tokens before it holds this many. */
const PRUNE_FLOOR = 1024;

export class Auth {
  private authenticator: Authenticator | undefined;
  private adminDigest: Buffer | undefined;
  private logger: Logger | undefined;
  /** Tags by token, for the tokens this node has seen. */
  private readonly cache = new Map<string, Permit>();
  /** The cache's size at which expired tokens are next dropped from it. */
  private pruneAt = PRUNE_FLOOR;
  /** Bumped by every change to the cache made by a change to the store; lets a concurrent read know it is stale. */
  private changes = 0;
  /** Changes run one at a time on this node, so the cache ends as the store does. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Whether connections must authenticate: an authenticator is configured. */
  get required(): boolean {
    return this.authenticator !== undefined;
  }

  /** The configured store, for commands that read it directly. */
  get store(): Authenticator | undefined {
    return this.authenticator;
  }

  /**
   * Turns authentication on, with `authenticator` as the store and
   * `adminToken` as the admin's. Store faults are logged on `logger`.
   */
  enable(authenticator: Authenticator, adminToken: string, logger?: Logger): void {
    this.authenticator = authenticator;
    this.adminDigest = digest(adminToken);
    this.logger = logger;
  }

  /** The identity a new connection starts with, before any `auth`. */
  get initial(): Identity {
    return this.required ? { role: 'anonymous' } : { role: 'user' };
  }

  /** Whether `token` is the admin token, compared in constant time. */
  isAdminToken(token: string): boolean {
    // Compare digests, so the comparison takes the same time whatever the token's length or content.
    return this.adminDigest !== undefined && timingSafeEqual(digest(token), this.adminDigest);
  }

  /**
   * The identity `token` grants, or undefined for a wrong one. Without an
   * authenticator every token is the unrestricted user. Throws
   * `CommandError` when the store cannot be read.
   */
  async identify(token: string): Promise<Identity | undefined> {
    if (!this.authenticator) return { role: 'user' };
    if (this.isAdminToken(token)) return { role: 'admin' };
    // A change that lands while the store is read may make the read stale: read again.
    for (let attempt = 0; ; attempt++) {
      const before = this.changes;
      const grant = await this.read('identify', token);
      if (this.changes !== before && attempt < 3) continue;
      this.remember(token, grant);
      if (!grant) return undefined;
      const expiry = grant.expiresAt === undefined ? {} : { expiresAt: grant.expiresAt };
      return grant.admin ? { role: 'admin', ...expiry } : { role: 'user', token, ...expiry };
    }
  }

  /** Why `who` may not use `tags`, or undefined when it may. Synchronous: it runs on every publish. */
  refuseTags(who: Authenticated, tags: readonly string[]): Refusal | undefined {
    const identity = who.identity;
    if (identity.role === 'admin') return undefined;
    if (identity.role === 'anonymous') return { kind: 'unauthenticated', error: 'not authenticated' };
    if (identity.token === undefined) return undefined;
    const permit = this.cache.get(identity.token);
    if (!permit) return { kind: 'forbidden', error: 'token is no longer registered' };
    if (expired(permit.expiresAt)) return { kind: 'unauthenticated', error: 'token expired' };
    const denied = tags.filter((tag) => !permit.tags.has(tag));
    return denied.length === 0 ? undefined : { kind: 'forbidden', error: `not permitted to use tags: ${denied.join(', ')}` };
  }

  /** The subscriptions `who` holds but may no longer hold, after its permissions changed. */
  forbiddenSubscriptions(who: Authenticated & { subscriptions: ReadonlyMap<string, readonly string[]> }): Array<readonly string[]> {
    return [...who.subscriptions.values()].filter((tags) => this.refuseTags(who, tags) !== undefined);
  }

  /** The tags `token` may use now on this node, or undefined when it is not registered or has expired. */
  permitted(token: string): ReadonlySet<string> | undefined {
    const permit = this.cache.get(token);
    return permit && !expired(permit.expiresAt) ? permit.tags : undefined;
  }

  /** Creates `token` with `tags`. The admin token cannot be registered: it already may do everything. */
  register(token: string, tags: readonly string[]): Promise<void> {
    if (this.isAdminToken(token)) return Promise.reject(new CommandError('the admin token cannot be registered'));
    return this.change(token, 'register', (store) => store.addToken(token, tags));
  }

  unregister(token: string): Promise<void> {
    return this.change(token, 'unregister', (store) => store.removeToken(token));
  }

  addTags(token: string, tags: readonly string[]): Promise<void> {
    return this.change(token, 'set', (store) => store.addTags(token, tags));
  }

  removeTags(token: string, tags: readonly string[]): Promise<void> {
    return this.change(token, 'unset', (store) => store.removeTags(token, tags));
  }

  /** The token's tags as the store holds them now (sorted), or undefined for an unknown token. */
  async tagsOf(token: string): Promise<string[] | undefined> {
    const before = this.changes;
    const grant = await this.read('tags', token);
    if (this.changes === before) this.remember(token, grant);
    return grant && [...grant.tags].sort();
  }

  /** Every token the store holds, sorted, each with its tags sorted; refused when the store cannot list its tokens. */
  async listTokens(): Promise<TokenTags[]> {
    const entries = await this.call('tokens', [], (store) => {
      if (!store.listTokens) throw new CommandError('this authenticator cannot list its tokens');
      return store.listTokens();
    });
    return entries
      .map(({ token, tags }) => ({ token, tags: [...tags].sort() }))
      .sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
  }

  /** Lets the changes under way finish, then closes the store. */
  async close(): Promise<void> {
    await this.queue;
    const store = this.authenticator;
    this.authenticator = undefined;
    this.cache.clear();
    await store?.close();
  }

  /**
   * Runs a change to the store, then re-reads the token so that the cache
   * holds what the store holds — also after a refusal, which may mean that
   * another node changed the token. Changes run one at a time.
   */
  private change(token: string, operation: string, apply: (store: Authenticator) => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      let applied = false;
      try {
        await this.call(operation, [token], apply);
        applied = true;
      } finally {
        // Refused or failed, nothing changed here; but a refusal may mean another node changed the token.
        const grant = await this.read(operation, token).catch(() => null);
        this.changes++;
        // Changed but unreadable: forget the token, so its connections are refused rather than trusted on stale tags.
        if (grant !== null) this.remember(token, grant);
        else if (applied) this.remember(token, undefined);
      }
    };
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => {});
    return done;
  }

  /** What the store says `token` grants; a grant already past its expiry is none, whatever the store's clock said. */
  private async read(operation: string, token: string): Promise<Grant | undefined> {
    const grant = grantOf(await this.call(operation, [token], (store) => store.tagsFor(token)));
    return grant && !expired(grant.expiresAt) ? grant : undefined;
  }

  private remember(token: string, grant: Grant | undefined): void {
    if (grant === undefined) return void this.cache.delete(token);
    this.cache.set(token, { tags: new Set(grant.tags), expiresAt: grant.expiresAt });
    if (grant.expiresAt !== undefined && this.cache.size >= this.pruneAt) this.prune();
  }

  /**
   * Drops the expired tokens from the cache. Signed tokens are minted without
   * end, and each is cached; pruning whenever the cache has doubled since the
   * last time keeps it within twice the most tokens valid at once (or
   * {@link PRUNE_FLOOR}), at a constant cost per token.
   */
  private prune(): void {
    for (const [token, permit] of this.cache) if (expired(permit.expiresAt)) this.cache.delete(token);
    this.pruneAt = Math.max(PRUNE_FLOOR, 2 * this.cache.size);
  }

  /**
   * Calls the store. A `CommandError` (the caller's mistake) passes through;
   * any other failure is logged without the tokens and becomes a
   * `CommandError` of kind `unavailable`, so clients get an error reply (or
   * a 503) and the server carries on.
   */
  private async call<T>(operation: string, tokens: readonly string[], fn: (store: Authenticator) => Promise<T>): Promise<T> {
    const store = this.authenticator;
    // Never opened, or closed under a command still running: as good as down.
    if (!store) throw new CommandError('no authenticator is configured', 'unavailable');
    try {
      return await fn(store);
    } catch (err) {
      if (err instanceof CommandError) throw err;
      this.logger?.error({ operation, error: mask(describe(err), tokens) }, 'authenticator failed');
      throw new CommandError(STORE_UNAVAILABLE, 'unavailable');
    }
  }
}

function expired(expiresAt: number | undefined): boolean {
  return expiresAt !== undefined && expiresAt <= Date.now();
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function describe(err: unknown): string {
  // Node reports a refused connection to a dual-stack host as an AggregateError with an empty message.
  if (err instanceof AggregateError && !err.message && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** `text` with every token in it replaced by `***`. */
function mask(text: string, tokens: readonly string[]): string {
  let masked = text;
  for (const token of tokens) if (token !== '') masked = masked.split(token).join('***');
  return masked;
}
