/**
 * Routes publishes to subscribers: publish → matcher → sessions. The message
 * is encoded once and every matched session is handed the same frame.
 *
 * No publish holds the event loop for long: a match that takes more than a
 * slice of steps (crafted subscriptions can make one take hundreds of
 * milliseconds) goes on in later turns, a slice a turn, taken in turn with
 * the other paused ones. Nor does a costly publish hold back anyone else's:
 * a match collects who it reaches and the message is delivered to all of
 * them at once when it ends, so publishes that come meanwhile are matched
 * and delivered at once, and a subscriber still gets each message whole and
 * once. Order holds where it is promised: a publisher's own messages, since
 * it waits for each to be delivered before its next is read; and messages
 * from the cluster, which wait behind a paused one from the cluster. A
 * closed connection's subscriptions are dropped a slice a turn too. See
 * docs/architecture.md.
 *
 * A message gets its history id (core/history.ts) when it is delivered, and
 * every session its match reached gets it then, at once: so ids increase in
 * the order every subscriber receives messages, which `resume`
 * (core/replay.ts) relies on.
 */
import { inject, injectable } from 'tsyringe';
import { CommandError } from './errors.ts';
import { Fifo } from './fifo.ts';
import { History } from './history.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import { SubscriptionIndex, type Walk } from './matcher.ts';
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

/** A publish whose match goes on over several turns. */
interface Delivery {
  readonly publisher: Session | undefined;
  readonly tags: readonly string[];
  readonly data: string | undefined;
  /** From a local connection: handed to the cluster once delivered here. */
  readonly local: boolean;
  /** From the cluster's stream, with its id. */
  readonly streamed: Streamed | undefined;
  readonly walk: Walk<Session>;
  /** Whom its match has reached so far, once each, in the order reached. */
  readonly reached: Set<Session>;
  /** Lets its publisher go on, once it is delivered. */
  resolve?: () => void;
}

/** A message from another node (or this node's, back from the cluster's stream), waiting for the one before it. */
interface Remote {
  readonly tags: readonly string[];
  readonly data: string | undefined;
  readonly streamed: Streamed | undefined;
}

/** A closed session whose subscriptions are still being dropped. */
interface Leaving {
  readonly session: Session;
  readonly rest: Iterator<[string, readonly string[]]>;
}

@injectable()
export class Broker implements BrokerService {
  private readonly index = new SubscriptionIndex<Session>();
  /** Increases with every publish; a session stamped with it has been reached by the match that runs whole. */
  private stamp = 0;
  /** Whom the match that runs now has reached, once each (reused, so a match allocates nothing for it). */
  private readonly reached: Session[] = [];
  private readonly collect = (session: Session): void => {
    if (session.stamp === this.stamp) return;
    session.stamp = this.stamp;
    this.reached.push(session);
  };
  /**
   * A paused match's set of whom it reached: stamps cannot tell, since
   * other matches stamp sessions between its slices.
   */
  private reaching: Set<Session> | undefined;
  private readonly collectPaused = (session: Session): void => void this.reaching!.add(session);
  /** Matches that go on over several turns, each given a slice in turn. */
  private readonly paused = new Fifo<Delivery>();
  private readonly deliveryTurns = new SlicedWork(() => this.deliverSlice());
  /** Messages from other nodes that wait for one before them (`remoteBusy`), in order. */
  private readonly remote = new Fifo<Remote>();
  private remoteBusy = false;
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
    // A paused match may have passed where this subscription goes: it gets that message all the same, so what was sent live is exact (core/replay.ts).
    for (let i = 0; i < this.paused.length; i++) {
      const delivery = this.paused.at(i)!;
      if (covers(delivery.tags, canonical)) delivery.reached.add(session);
    }
    session.subscribedAt.set(key, this.history.lastSeq);
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
   * when the match takes several turns: it resolves once the message is
   * delivered, and the publisher's session waits for it (so one client has
   * one such publish under way at a time, and its messages keep their order).
   * In a cluster with history, the cluster may take it first (`BrokerHooks.sequence`).
   */
  publish(publisher: Session | undefined, tags: readonly string[], data: string | undefined): Promise<void> | undefined {
    const taken = this.hooks?.sequence?.(publisher, tags, data);
    if (taken) return taken === true ? undefined : taken;
    const paused = this.begin(publisher, tags, data, true, undefined);
    return paused && new Promise((resolve) => (paused.resolve = resolve));
  }

  /**
   * Delivers a message published on another node to this node's
   * subscribers, like {@link publish} without a publisher, and does not hand
   * it back to the backplane (no re-broadcast). Messages from other nodes
   * are delivered in the order they come: one waits while another's match
   * is paused. `streamed`: it came through the cluster's stream, maybe from
   * this node, and has the stream's id.
   */
  publishRemote(tags: readonly string[], data: string | undefined, streamed?: Streamed): void {
    if (this.remoteBusy) this.remote.push({ tags, data, streamed });
    else this.remoteBusy = this.begin(streamed?.publisher, tags, data, false, streamed) !== undefined;
  }

  /** Sends `session` the retained messages it missed after `id` that match its subscriptions (core/replay.ts). */
  resume(session: Session, id: string): ResumeOutcome | Promise<ResumeOutcome> {
    return replay(session, this.history, id);
  }

  /** Matches a publish and delivers it when the match fits in a slice; else returns it paused, to go on in later turns. */
  private begin(publisher: Session | undefined, tags: readonly string[], data: string | undefined, local: boolean, streamed: Streamed | undefined): Delivery | undefined {
    if (streamed?.gap || streamed?.retainOnly) return void this.retain(tags, data, streamed);
    // The scratch list is in use while a match's message is handed out: a session may not publish from `deliver`.
    if (this.reached.length > 0) throw new Error('Broker.publish: a delivery may not publish');
    const stamp = ++this.stamp;
    // Stamping the publisher first makes the match skip it like a session already reached.
    if (publisher) publisher.stamp = stamp;
    const reached = this.reached;
    const walk = this.index.start(tags, this.collect, MATCH_SLICE_STEPS);
    if (!walk) {
      this.deliver(publisher, tags, data, local, streamed, reached);
      reached.length = 0;
      return undefined;
    }
    this.stats.slicedMatches++;
    const delivery: Delivery = { publisher, tags, data, local, streamed, walk, reached: new Set(reached) };
    reached.length = 0;
    this.paused.push(delivery);
    this.deliveryTurns.schedule();
    return delivery;
  }

  /** One turn's slice of the paused matches, each taken in turn. Returns true when none is left. */
  private deliverSlice(): boolean {
    let steps = MATCH_SLICE_STEPS;
    while (steps > 0 && this.paused.length > 0) {
      const delivery = this.paused.shift()!;
      this.stats.matchSlices++;
      this.reaching = delivery.reached;
      const done = this.index.resume(delivery.walk, this.collectPaused, steps);
      this.reaching = undefined;
      steps = this.index.stepsLeft;
      if (!done) {
        this.paused.push(delivery);
        break;
      }
      const { publisher, tags, data, local, streamed } = delivery;
      this.deliver(publisher, tags, data, local, streamed, [...delivery.reached]);
      delivery.resolve?.();
      if (!local) this.nextRemote();
    }
    return this.paused.length === 0;
  }

  /** A message from another node is delivered: the ones that waited for it go on, until one pauses. */
  private nextRemote(): void {
    this.remoteBusy = false;
    while (!this.remoteBusy && this.remote.length > 0) {
      const { tags, data, streamed } = this.remote.shift()!;
      this.remoteBusy = this.begin(streamed?.publisher, tags, data, false, streamed) !== undefined;
    }
  }

  /** What the cluster's stream holds but is not delivered now: its past, read when the node joined, kept for resumes; a gap marker. */
  private retain(tags: readonly string[], data: string | undefined, streamed: Streamed): void {
    if (streamed.gap) this.history.markGap();
    else this.history.record(0, tags, data, streamed.id, streamed.time);
  }

  /**
   * Gives the message its id, records it, and hands it to every open
   * session a match reached but its publisher; then to the cluster.
   */
  private deliver(
    publisher: Session | undefined,
    tags: readonly string[],
    data: string | undefined,
    local: boolean,
    streamed: Streamed | undefined,
    reached: readonly Session[],
  ): void {
    const frame = this.history.record(publisher?.id ?? 0, tags, data, streamed?.id, streamed?.time);
    for (let i = 0; i < reached.length; i++) {
      const session = reached[i]!;
      // A slow session closed by a delivery, or one closed while the match was paused, gets nothing.
      if (session === publisher || !session.isOpen) continue;
      session.deliver(frame);
      this.stats.delivered++;
    }
    this.stats.published++;
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
