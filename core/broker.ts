/**
 * Routes publishes to subscribers: publish → matcher → sessions. The message
 * is encoded once and every matched session is handed the same frame.
 *
 * No publish holds the event loop for long: a match that takes more than a
 * slice of steps (crafted subscriptions can make one take hundreds of
 * milliseconds) goes on in later turns, and publishes that come meanwhile,
 * local and remote, wait behind it in order. A closed connection's
 * subscriptions are dropped a slice a turn too. See docs/architecture.md.
 */
import { inject, injectable } from 'tsyringe';
import { CommandError } from './errors.ts';
import { Fifo } from './fifo.ts';
import { History } from './history.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import { SubscriptionIndex } from './matcher.ts';
import type { Frame } from './protocol.ts';
import { replay, type ResumeOutcome } from './replay.ts';
import type { BrokerService } from './services.ts';
import type { Session } from './session.ts';
import { MATCH_SLICE_STEPS, SLICE_MS, SlicedWork } from './slices.ts';
import { canonicalTags, covers, tagSetKey } from './tags.ts';
import { TOKENS } from './tokens.ts';

/**
 * Told of what other nodes may need: local publishes (after local delivery)
 * and subscriptions coming and going. The cluster (core/cluster.ts) sets it.
 */
export interface BrokerHooks {
  /**
   * Takes a local publish before it is delivered, to send it through the
   * cluster's stream: it is delivered here, as on every node, when it comes
   * back (`publishRemote`), in the stream's order. False: not taken, deliver
   * it now. A promise: taken, and the publisher waits for it (too many are
   * on their way).
   */
  sequence?(publisher: Session | undefined, tags: readonly string[], data: string | undefined): boolean | Promise<void>;
  /** A publish from a local connection, already delivered here; `data` as in {@link Broker.publish}. */
  published(tags: readonly string[], data: string | undefined): void;
  /** A session took the subscription `canonical` (sorted, distinct tags). */
  subscribed(canonical: readonly string[]): void;
  /** A session dropped the subscription `canonical`. */
  unsubscribed(canonical: readonly string[]): void;
}

/** A message from a cluster's stream (core/cluster.ts), with the stream's id for it. */
export interface Streamed {
  readonly id: string;
  /** When it was published (ms since the epoch). */
  readonly time: number;
  /** The local connection that published it. */
  readonly publisher?: Session;
  /** Read from the stream's past when the node joined: retained for resumes, delivered to no one. */
  readonly retainOnly?: boolean;
  /** Not a message: messages may be missing here (core/history.ts, `markGap`). */
  readonly gap?: boolean;
}

/** A publish waiting for the one before it, or whose match goes on over several turns. */
interface Delivery {
  readonly publisher: Session | undefined;
  readonly tags: readonly string[];
  readonly data: string | undefined;
  /** From a local connection: handed to the cluster once delivered here. */
  readonly local: boolean;
  readonly streamed: Streamed | undefined;
  /** Its match has started: it is the head of the queue. */
  started: boolean;
  /** Lets its publisher go on, once it is delivered. */
  resolve?: () => void;
}

/** A closed session whose subscriptions are still being dropped. */
interface Leaving {
  readonly session: Session;
  readonly rest: Iterator<[string, readonly string[]]>;
}

@injectable()
export class Broker implements BrokerService {
  private readonly index = new SubscriptionIndex<Session>();
  /** Increases with every publish; a session stamped with it has had the message. */
  private stamp = 0;
  /** The publish under way, read by `visit` (bound once, so no closure per publish). */
  private frame: Frame | undefined;
  // `deliver` may close a slow session, which removes its subscriptions and
  // may prune the trie mid-walk; the walk tolerates that (Map and Set
  // iteration tolerate deletion). A closed session's subscriptions may
  // still be in the index while its teardown goes on: it is skipped.
  private readonly visit = (session: Session): void => {
    if (session.stamp === this.stamp || !session.isOpen) return;
    session.stamp = this.stamp;
    session.deliver(this.frame!);
    this.stats.delivered++;
  };
  /** Publishes that wait, in order; the head's match is the one paused, once `started`. */
  private readonly deliveries = new Fifo<Delivery>();
  private readonly deliveryTurns = new SlicedWork(() => this.deliverSlice());
  /** Closed sessions whose subscriptions are still being dropped, oldest first. */
  private readonly leaving = new Fifo<Leaving>();
  private readonly teardownTurns = new SlicedWork(() => this.teardownSlice());

  readonly stats = {
    published: 0,
    delivered: 0,
    /** Publishes whose match took more than one slice. */
    slicedMatches: 0,
    /** Slices run by those matches after their first. */
    matchSlices: 0,
    /** Subscribes refused for `maxSubscriptionsPerConnection`. */
    refusedSubscriptions: 0,
  };
  /** Set by the cluster, when this node is part of one. */
  hooks: BrokerHooks | undefined;

  constructor(
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.History) private readonly history: History = new History(false),
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
    session.subscribedAt.set(key, this.sentThrough(session, canonical));
    this.index.add(canonical, session);
    this.hooks?.subscribed(canonical);
  }

  /** Removes exactly the subscription `tags`, if `session` holds it. */
  unsubscribe(session: Session, tags: readonly string[]): void {
    const canonical = canonicalTags(tags);
    const key = tagSetKey(canonical);
    if (session.subscriptions.delete(key)) {
      session.subscribedAt.delete(key);
      this.index.remove(canonical, session);
      this.hooks?.unsubscribed(canonical);
    }
  }

  /**
   * Drops every subscription of a closed session: what a slice allows now,
   * the rest in later turns. A closed session receives nothing meanwhile.
   */
  forget(session: Session): void {
    if (session.subscriptions.size === 0) return;
    const leaving: Leaving = { session, rest: session.subscriptions.entries() };
    if (this.leaving.length === 0 && this.drop(leaving, performance.now())) return;
    this.leaving.push(leaving);
    this.teardownTurns.schedule();
  }

  /**
   * Delivers a message to every session holding a subscription ⊆ `tags`,
   * once each, never to `publisher`, then hands it to the cluster. `data`
   * is JSON text, forwarded as is (undefined: no data). Returns a promise
   * when the delivery waits behind another or takes several turns: it
   * resolves once the message is delivered, and the publisher's session
   * waits for it (so one client queues one publish at a time). In a cluster
   * with history, the cluster may take it first (`BrokerHooks.sequence`).
   */
  publish(publisher: Session | undefined, tags: readonly string[], data: string | undefined): Promise<void> | undefined {
    const taken = this.hooks?.sequence?.(publisher, tags, data);
    if (taken) return taken === true ? undefined : taken;
    const waiting = this.submit(publisher, tags, data, true, undefined);
    return waiting && new Promise((resolve) => (waiting.resolve = resolve));
  }

  /**
   * Delivers a message published on another node to this node's
   * subscribers, like {@link publish} without a publisher, and does not hand
   * it back to the backplane (no re-broadcast). `streamed`: it came through
   * the cluster's stream, maybe from this node, and has the stream's id.
   */
  publishRemote(tags: readonly string[], data: string | undefined, streamed?: Streamed): void {
    this.submit(streamed?.publisher, tags, data, false, streamed);
  }

  /** Sends `session` the retained messages it missed after `id` that match its subscriptions (core/replay.ts). */
  resume(session: Session, id: string): ResumeOutcome | Promise<ResumeOutcome> {
    return replay(session, this.history, id, this.claimPaused(session));
  }

  /**
   * While a message is matched in slices, whether a replay is to send it to
   * `session`: it matches one of the session's subscriptions and the match
   * has not reached the session yet. Stamping the session then keeps the
   * rest of the match from sending it again. Undefined when no match is paused.
   */
  private claimPaused(session: Session): boolean | undefined {
    const head = this.frame && this.deliveries.peek();
    if (!head) return undefined;
    if (session.stamp === this.stamp) return false;
    for (const subscription of session.subscriptions.values()) {
      if (covers(head.tags, subscription)) {
        session.stamp = this.stamp;
        return true;
      }
    }
    return false;
  }

  /**
   * The history seq up to which the new subscription `canonical` counts as
   * having been sent what it matches (core/replay.ts). While a message is
   * matched in slices, the rest of the match may or may not reach a
   * subscription taken meanwhile: one that matches it is sent it now
   * (unless the session has it), so that this is exact.
   */
  private sentThrough(session: Session, canonical: readonly string[]): number {
    const head = this.frame && this.deliveries.peek();
    if (!head || !covers(head.tags, canonical)) return this.history.lastSeq;
    this.visit(session);
    return this.history.lastSeq - 1;
  }

  /** Delivers now when nothing waits and the match fits in a slice; else queues the publish and returns it. */
  private submit(
    publisher: Session | undefined,
    tags: readonly string[],
    data: string | undefined,
    local: boolean,
    streamed: Streamed | undefined,
  ): Delivery | undefined {
    let started = false;
    if (this.deliveries.length === 0) {
      if (this.start(publisher, tags, data, MATCH_SLICE_STEPS, streamed)) return void this.delivered(tags, data, local, streamed);
      started = true;
    }
    const delivery: Delivery = { publisher, tags, data, local, streamed, started };
    this.deliveries.push(delivery);
    this.deliveryTurns.schedule();
    return delivery;
  }

  /** One turn's slice of the queued deliveries, shared by as many as it reaches. Returns true when none is left. */
  private deliverSlice(): boolean {
    let steps = MATCH_SLICE_STEPS;
    for (let head = this.deliveries.peek(); head && steps > 0; head = this.deliveries.peek()) {
      let done: boolean;
      if (head.started) {
        this.stats.matchSlices++;
        done = this.index.resume(steps);
      } else {
        head.started = true;
        done = this.start(head.publisher, head.tags, head.data, steps, head.streamed);
      }
      steps = this.index.stepsLeft;
      if (!done) break;
      this.frame = undefined;
      this.deliveries.shift();
      this.delivered(head.tags, head.data, head.local, head.streamed);
      head.resolve?.();
    }
    return this.deliveries.length === 0;
  }

  /** Starts matching a publish. Returns true when it is delivered; false when its match is paused, to go on next turn. */
  private start(publisher: Session | undefined, tags: readonly string[], data: string | undefined, steps: number, streamed: Streamed | undefined): boolean {
    const stamp = ++this.stamp;
    // Stamping the publisher first makes the matcher skip it like a session already served.
    if (publisher) publisher.stamp = stamp;
    if (streamed?.gap) {
      this.history.markGap();
      return true;
    }
    // The id is given here, as the match starts: ids follow delivery order (core/replay.ts relies on it).
    this.frame = this.history.record(publisher?.id ?? 0, tags, data, streamed?.id, streamed?.time);
    if (streamed?.retainOnly || this.index.start(tags, this.visit, steps)) {
      this.frame = undefined;
      return true;
    }
    this.stats.slicedMatches++;
    return false;
  }

  private delivered(tags: readonly string[], data: string | undefined, local: boolean, streamed: Streamed | undefined): void {
    // The stream's past and its gap markers were not published now.
    if (!streamed?.retainOnly && !streamed?.gap) this.stats.published++;
    if (local) this.hooks?.published(tags, data);
  }

  /** One turn's slice of teardown. Returns true when every closed session's subscriptions are gone. */
  private teardownSlice(): boolean {
    const started = performance.now();
    for (let head = this.leaving.peek(); head; head = this.leaving.peek()) {
      if (!this.drop(head, started)) return false;
      this.leaving.shift();
    }
    return true;
  }

  /** Drops `leaving`'s subscriptions until the slice begun at `started` is spent. Returns true when none is left. */
  private drop(leaving: Leaving, started: number): boolean {
    const { session, rest } = leaving;
    for (let next = rest.next(); !next.done; next = rest.next()) {
      const [key, canonical] = next.value;
      // Deleted as it goes, so an unsubscribe that comes meanwhile cannot drop it twice.
      session.subscriptions.delete(key);
      this.index.remove(canonical, session);
      this.hooks?.unsubscribed(canonical);
      if (performance.now() - started >= SLICE_MS) return false;
    }
    return true;
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
