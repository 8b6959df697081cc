/**
 * Authentication and permissions (SPEC §4), decided here once for every
 * transport. The authenticator only stores tokens and their tags; this
 * service turns a token into an identity and answers, synchronously, whether
 * a connection may use a set of tags.
 *
 * Each token's tags are cached from its first successful `identify`, and the
 * admin commands change store and cache together through this service, so a
 * change reaches that token's live connections from their next command. A
 * change made to a shared store by another node reaches this node's
 * connections when they authenticate again.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator } from './authenticator.ts';
import { CommandError } from './errors.ts';

/**
 * Who a connection is. `user` without a token is the unrestricted user of a
 * server that has no authenticator; with a token, it may use that token's
 * tags only.
 */
export type Identity = { role: 'anonymous' } | { role: 'user'; token?: string } | { role: 'admin' };

export type Role = Identity['role'];

/** Something that holds an identity: a session. */
export interface Authenticated {
  identity: Identity;
}

export class Auth {
  private authenticator: Authenticator | undefined;
  private adminDigest: Buffer | undefined;
  /** Tags by token, for the tokens this node has seen. */
  private readonly cache = new Map<string, ReadonlySet<string>>();

  /** Whether connections must authenticate: an authenticator is configured. */
  get required(): boolean {
    return this.authenticator !== undefined;
  }

  /** The configured store, for commands that read it directly. */
  get store(): Authenticator | undefined {
    return this.authenticator;
  }

  /** Turns authentication on, with `authenticator` as the store and `adminToken` as the admin's. */
  enable(authenticator: Authenticator, adminToken: string): void {
    this.authenticator = authenticator;
    this.adminDigest = digest(adminToken);
  }

  /** The identity a new connection starts with, before any `auth`. */
  get initial(): Identity {
    return this.required ? { role: 'anonymous' } : { role: 'user' };
  }

  /**
   * The identity `token` grants, or undefined for a wrong one. Without an
   * authenticator every token is the unrestricted user.
   */
  async identify(token: string): Promise<Identity | undefined> {
    if (!this.authenticator) return { role: 'user' };
    // Compare digests, so the comparison takes the same time whatever the token's length or content.
    if (timingSafeEqual(digest(token), this.adminDigest!)) return { role: 'admin' };
    const tags = await this.authenticator.tagsFor(token);
    if (tags === undefined) return undefined;
    this.cache.set(token, new Set(tags));
    return { role: 'user', token };
  }

  /** Why `who` may not use `tags`, or undefined when it may. */
  refuseTags(who: Authenticated, tags: readonly string[]): string | undefined {
    const identity = who.identity;
    if (identity.role === 'admin') return undefined;
    if (identity.role === 'anonymous') return 'not authenticated';
    if (identity.token === undefined) return undefined;
    const allowed = this.cache.get(identity.token);
    if (!allowed) return 'token is no longer registered';
    const denied = tags.filter((tag) => !allowed.has(tag));
    return denied.length === 0 ? undefined : `not permitted to use tags: ${denied.join(', ')}`;
  }

  /** Creates `token` with `tags`. */
  async register(token: string, tags: readonly string[]): Promise<void> {
    const store = this.storeOrFail();
    await store.addToken(token, tags);
    this.cache.set(token, new Set(tags));
  }

  async unregister(token: string): Promise<void> {
    await this.storeOrFail().removeToken(token);
    this.cache.delete(token);
  }

  async addTags(token: string, tags: readonly string[]): Promise<void> {
    await this.storeOrFail().addTags(token, tags);
    await this.refresh(token);
  }

  async removeTags(token: string, tags: readonly string[]): Promise<void> {
    await this.storeOrFail().removeTags(token, tags);
    await this.refresh(token);
  }

  async close(): Promise<void> {
    const store = this.authenticator;
    this.authenticator = undefined;
    this.cache.clear();
    await store?.close();
  }

  /** Re-reads a token's tags from the store after a change. */
  private async refresh(token: string): Promise<void> {
    const tags = await this.storeOrFail().tagsFor(token);
    if (tags === undefined) this.cache.delete(token);
    else this.cache.set(token, new Set(tags));
  }

  private storeOrFail(): Authenticator {
    if (!this.authenticator) throw new CommandError('no authenticator is configured');
    return this.authenticator;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
