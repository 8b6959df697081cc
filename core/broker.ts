/**
 * Routes publishes to subscribers: publish → matcher → sessions. The message
 * is encoded once and every matched session is handed the same frame.
 */
import { inject, injectable } from 'tsyringe';
import { CommandError } from './errors.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import { SubscriptionIndex } from './matcher.ts';
import { Frame } from './protocol.ts';
import type { Session } from './session.ts';
import { canonicalTags, tagSetKey } from './tags.ts';
import { TOKENS } from './tokens.ts';

/**
 * Told of what other nodes may need: local publishes (after local delivery)
 * and subscriptions coming and going. The cluster (core/cluster.ts) sets it.
 */
export interface BrokerHooks {
  /** A publish from a local connection, already delivered here; `data` as in {@link Broker.publish}. */
  published(tags: readonly string[], data: string | undefined): void;
  /** A session took the subscription `canonical` (sorted, distinct tags). */
  subscribed(canonical: readonly string[]): void;
  /** A session dropped the subscription `canonical`. */
  unsubscribed(canonical: readonly string[]): void;
}

@injectable()
export class Broker {
  private readonly index = new SubscriptionIndex<Session>();
  /** Increases with every publish; a session stamped with it has had the message. */
  private stamp = 0;
  /** The publish under way, read by `visit` (bound once, so no closure per publish). */
  private frame: Frame | undefined;
  private delivered = 0;
  // `deliver` may close a slow session, which removes its subscriptions and
  // may prune the trie mid-walk; the walk tolerates that (Map and Set
  // iteration tolerate deletion).
  private readonly visit = (session: Session): void => {
    if (session.stamp === this.stamp) return;
    session.stamp = this.stamp;
    session.deliver(this.frame!);
    this.delivered++;
  };

  readonly stats = {
    published: 0,
    delivered: 0,
    /** Subscribes refused for `maxSubscriptionsPerConnection`. */
    refusedSubscriptions: 0,
  };
  /** Set by the cluster, when this node is part of one. */
  hooks: BrokerHooks | undefined;

  constructor(
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  /** Distinct subscriptions held on this node. */
  get subscriptionCount(): number {
    return this.index.size;
  }

  /**
   * Subscribes `session` to `tags` (non-empty). Subscribing twice to a set is
   * one subscription. Throws `CommandError` (kind `limit`) when the session
   * holds `maxSubscriptionsPerConnection` already.
   */
  subscribe(session: Session, tags: readonly string[]): void {
    // An asynchronous command may finish after its connection closed: a closed session holds nothing.
    if (!session.isOpen) return;
    const canonical = canonicalTags(tags);
    const key = tagSetKey(canonical);
    if (session.subscriptions.has(key)) return;
    const limit = this.limits.maxSubscriptionsPerConnection;
    if (session.subscriptions.size >= limit) this.refuse(session, limit);
    session.subscriptions.set(key, canonical);
    this.index.add(canonical, session);
    this.hooks?.subscribed(canonical);
  }

  /** Removes exactly the subscription `tags`, if `session` holds it. */
  unsubscribe(session: Session, tags: readonly string[]): void {
    const canonical = canonicalTags(tags);
    if (session.subscriptions.delete(tagSetKey(canonical))) {
      this.index.remove(canonical, session);
      this.hooks?.unsubscribed(canonical);
    }
  }

  /** Drops every subscription of a closed session. */
  forget(session: Session): void {
    for (const canonical of session.subscriptions.values()) {
      this.index.remove(canonical, session);
      this.hooks?.unsubscribed(canonical);
    }
    session.subscriptions.clear();
  }

  /**
   * Delivers a message to every session holding a subscription ⊆ `tags`,
   * once each, never to `publisher`. `data` is JSON text, forwarded as is
   * (undefined: no data). Returns the number of deliveries.
   */
  publish(publisher: Session | undefined, tags: readonly string[], data: string | undefined): number {
    const delivered = this.deliver(publisher, tags, data);
    this.hooks?.published(tags, data);
    return delivered;
  }

  /**
   * Delivers a message published on another node to this node's
   * subscribers, like {@link publish} without a publisher, and does not hand
   * it back to the backplane (no re-broadcast).
   */
  publishRemote(tags: readonly string[], data: string | undefined): number {
    return this.deliver(undefined, tags, data);
  }

  private deliver(publisher: Session | undefined, tags: readonly string[], data: string | undefined): number {
    const stamp = ++this.stamp;
    // Stamping the publisher first makes the matcher skip it like a session already served.
    if (publisher) publisher.stamp = stamp;
    this.frame = Frame.publish(tags, data);
    this.delivered = 0;
    this.index.match(tags, this.visit);
    this.frame = undefined;
    this.stats.published++;
    this.stats.delivered += this.delivered;
    return this.delivered;
  }

  private refuse(session: Session, limit: number): never {
    this.stats.refusedSubscriptions++;
    // Once per connection at WARN, so a client that keeps trying floods no log; each refusal is logged at DEBUG by the dispatcher.
    if (session.refusedSubscriptions++ === 0) {
      this.logger.warn({ session: session.id, ...session.info, limit }, 'maxSubscriptionsPerConnection reached: subscribes are refused');
    }
    throw new CommandError(`too many subscriptions: ${session.subscriptions.size + 1} (limit ${limit})`, 'limit');
  }
}
