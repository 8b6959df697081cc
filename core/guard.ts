/**
 * Token guessing, slowed per remote address across connections and
 * transports, and connections that never authenticate, closed. Every token
 * check goes through {@link AuthGuard.identify}: `auth` on a line or
 * WebSocket connection, and the token of an HTTP request, an event stream or
 * a WebSocket upgrade. Without an authenticator there is nothing to guess,
 * and none of this applies.
 *
 * - A right token is answered at once; anything else — a wrong token, or a
 *   store that is down — only after `authFailureDelayMs`.
 * - Each check holds a slot of its address from the moment it starts until
 *   it is answered; an address has `maxUnauthenticatedPerAddress` slots. A
 *   check that finds them all taken is refused at once, before its token is
 *   looked at, so the refusal says nothing about the token. Hence at most
 *   that many wrong guesses per delay from one address (16 a second by
 *   default), however many connections it opens.
 * - A failed check keeps its slot for its whole delay, even if the client
 *   leaves: otherwise a client could give up on any answer slower than a
 *   right token's and guess again at once.
 * - A connection that has not authenticated holds no slot while it sends
 *   nothing: idle connections cannot lock an address out, and
 *   `authTimeoutMs` closes them.
 *
 * docs/auth.md says why a right token also needs a free slot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { inject, injectable } from 'tsyringe';
import type { Auth, Identity } from './auth.ts';
import { CommandError } from './errors.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { ConnectionInfo, Session } from './session.ts';
import { TOKENS } from './tokens.ts';

export const TOO_MANY_UNAUTHENTICATED = 'too many unauthenticated connections from this address';

@injectable()
export class AuthGuard {
  /** Slots taken, by address key; an address with none has no entry, so the map holds only addresses checking now. */
  private readonly checking = new Map<string, number>();
  /** Wrong tokens answered, for metrics. */
  failures = 0;
  /** Refusals, for metrics: checks over an address's slots, connections closed for not authenticating in time. */
  readonly refused = { perAddress: 0, timeout: 0 };

  constructor(
    @inject(TOKENS.Auth) private readonly auth: Auth,
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  /**
   * The identity `token` grants a client at `peer`, or undefined for a wrong
   * token, answered as the top of this file says. Throws a `CommandError` of
   * kind `throttled` (closing) when the address has no slot free, and of
   * kind `unavailable` when the store cannot be read.
   */
  async identify(token: string, peer: ConnectionInfo): Promise<Identity | undefined> {
    if (!this.auth.required) return this.auth.identify(token);
    const key = addressKey(peer.address ?? peer.remote);
    const taken = this.checking.get(key) ?? 0;
    if (taken >= this.limits.maxUnauthenticatedPerAddress) {
      this.refused.perAddress++;
      this.logger.debug({ ...peer, checking: taken }, 'token check refused: too many from this address at once');
      throw new CommandError(TOO_MANY_UNAUTHENTICATED, 'throttled', { close: true });
    }
    this.checking.set(key, taken + 1);
    let identity: Identity | undefined;
    try {
      identity = await this.auth.identify(token);
      if (!identity) {
        this.failures++;
        this.logger.debug(peer, 'wrong token');
      }
    } finally {
      // A store fault waits too: answered at once, it would tell the admin token (checked without the store) from the rest.
      // Unreferenced: a delay under way must not keep the process of a closed server alive.
      if (!identity) await sleep(this.limits.authFailureDelayMs, undefined, { ref: false });
      this.release(key);
    }
    return identity;
  }

  /** Addresses with token checks under way now, for tests: an address is forgotten once its last check is answered. */
  get addresses(): number {
    return this.checking.size;
  }

  /** Closes `session` with an error reply unless it authenticates within `authTimeoutMs`. */
  watch(session: Session): void {
    const ms = this.limits.authTimeoutMs;
    session.awaitAuth(ms, () => {
      this.refused.timeout++;
      this.logger.debug({ session: session.id, ...session.info }, 'not authenticated in time: closing');
      session.reply({ command: 'auth', error: `not authenticated within ${ms} ms; closing` });
      session.end();
    });
  }

  private release(key: string): void {
    const left = this.checking.get(key)! - 1;
    if (left === 0) this.checking.delete(key);
    else this.checking.set(key, left);
  }
}

/**
 * What an address's slots are counted under: an IPv4 address as it is, also
 * when a dual-stack socket reports it IPv4-mapped (`::ffff:10.0.0.1`); an
 * IPv6 address by its /64 network, since one host or household is usually
 * given a whole /64 (counted one by one, its addresses would give one client
 * billions of slots); anything else (a Unix socket's path) as it is.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  // The peer addresses a socket reports: only IPv6 ones hold a colon.
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.replace(/%.*$/, '').split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  let full = groups(head);
  if (tail !== undefined) {
    const after = groups(tail);
    // An IPv4 tail (`::1.2.3.4`) fills two groups.
    const width = after.length + (after.at(-1)?.includes('.') ? 1 : 0);
    full = [...full, ...Array<string>(8 - full.length - width).fill('0'), ...after];
  }
  return `${full
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
