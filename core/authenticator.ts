/**
 * The authenticator seam: a small async store of tokens and the
 * tags each may use. It decides nothing; permission checks are the core's,
 * made once for every transport. Implementations register by URI scheme.
 *
 * A method refuses what the caller got wrong (an existing token, an unknown
 * one) by throwing `CommandError`, whose message the admin sees; any other
 * failure (a database gone) is a fault, logged and replied as an error.
 */
import type { Logger } from './logger.ts';

export interface Authenticator {
  /** Creates a token with its tags; fails if it exists. */
  addToken(token: string, tags: readonly string[]): Promise<void>;
  removeToken(token: string): Promise<void>;
  addTags(token: string, tags: readonly string[]): Promise<void>;
  removeTags(token: string, tags: readonly string[]): Promise<void>;
  /**
   * The token's tags, or `undefined` for an unknown token; a store whose
   * tokens say more (a signed token's expiry) answers a {@link Grant}.
   */
  tagsFor(token: string): Promise<string[] | Grant | undefined>;
  /**
   * Every token with its tags, in any order, for the admin's `tokens`
   * command. Optional: a store that keeps no tokens (signed ones) leaves
   * it out, and `tokens` is then refused.
   */
  listTokens?(): Promise<TokenTags[]>;
  close(): Promise<void>;
}

/** A token and the tags it may use. */
export interface TokenTags {
  token: string;
  tags: string[];
}

/**
 * What a token grants, from a store whose tokens carry more than tags: a
 * signed token expires, and may grant admin.
 */
export interface Grant {
  tags: string[];
  /** When the token stops being valid, in ms since the epoch: its connections are closed then. */
  expiresAt?: number;
  /** The token may do everything the admin token may. */
  admin?: boolean;
}

/** A store's answer to `tagsFor` as a grant. */
export function grantOf(answer: string[] | Grant | undefined): Grant | undefined {
  return Array.isArray(answer) ? { tags: answer } : answer;
}

export type AuthenticatorFactory = (url: URL, context: { logger: Logger }) => Authenticator | Promise<Authenticator>;
