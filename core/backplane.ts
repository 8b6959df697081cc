/**
 * The backplane seam: a transport that carries bytes between mist
 * nodes. A backplane plugin (redis://, nats://…) is transport only: connect,
 * publish a payload on a channel, deliver what arrives on the channels it
 * was asked to subscribe to, reconnect with backoff, and say when it is up
 * or down. Everything that makes a cluster — node ids, the envelope, loop
 * prevention, interest propagation — lives once, in core/cluster.ts.
 *
 * @example
 * ```ts
 * api.backplanes.register('memory', (url, context) => {
 *   const bus = busNamed(url.hostname);
 *   bus.on('message', (channel, payload) => context.receive(channel, payload));
 *   queueMicrotask(() => context.connected());
 *   return { publish: (channel, payload) => bus.emit('message', channel, payload), close: async () => {} };
 * });
 * ```
 */
import type { HistoryLimits } from './history.ts';
import type { Logger } from './logger.ts';

export interface Backplane {
  /**
   * Sends `payload` on `channel`, to every node subscribed to it (this one
   * included, unless the transport can suppress echoes). Never blocks and
   * never throws: while disconnected it drops the payload and returns false
   * (at-most-once; the cluster counts the drop).
   */
  publish(channel: string, payload: string): boolean;
  /** Leaves the backplane: flushes what was published, unsubscribes, disconnects. Idempotent. */
  close(): Promise<void>;
  /**
   * The backplane's durable stream, when it has one and `context.stream`
   * asked for it: the cluster's history, and the order in which every node
   * delivers (docs/cluster.md#history-and-resume). Without it a cluster's
   * history is each node's own.
   */
  readonly stream?: BackplaneStream;
}

/** An ordered, bounded log that every node reads from (Redis Streams, NATS JetStream). */
export interface BackplaneStream {
  /**
   * Appends `payload`, to be read back by every node, this one included
   * (`StreamContext.entry`). Never blocks and never throws: returns false
   * when the stream cannot take it now (disconnected, not ready); one that
   * fails later is simply never read back.
   */
  append(payload: string): boolean;
}

/** What a backplane with a stream is told and calls back. */
export interface StreamContext {
  /** Names the stream; derived from the cluster's prefix, so one Redis or NATS can hold several clusters. */
  readonly name: string;
  /** The history's bounds: the backplane trims the stream to about these, as far as it can. */
  readonly limits: HistoryLimits;
  /**
   * An entry, in the stream's order, each once: `id` is the stream's
   * (increasing, the same on every node), `time` when it was appended
   * (ms since the epoch). When the node first connects the backplane reads
   * the stream's past first (up to `limits.maxMessages`) with `live` false:
   * kept for resumes, delivered to no one; after that, and after every
   * reconnect, it goes on from the last entry it handed over.
   */
  entry(id: string, payload: string, time: number, live: boolean): void;
  /** Entries this node had not read were lost (trimmed past it, or the backplane lost the stream). */
  missed(): void;
}

export interface BackplaneContext {
  logger: Logger;
  /** The channels (NATS subjects, Redis channels) to subscribe to, and to resubscribe to after a reconnect. */
  channels: readonly string[];
  /** A payload arrived on one of `channels` (possibly this node's own). */
  receive(channel: string, payload: string): void;
  /**
   * The connection is up and subscribed to every channel — the first time or
   * after a reconnect. The cluster then (re)announces this node.
   */
  connected(): void;
  /** The connection is lost; the transport keeps reconnecting with backoff until closed. */
  disconnected(reason?: string): void;
  /** How long to wait before reconnect attempt `attempt` (1 for the first), in ms: the backoff every backplane uses. */
  reconnectDelay(attempt: number): number;
  /** Set when history is on: a backplane that has a durable stream offers it as `Backplane.stream`. */
  stream?: StreamContext;
}

/**
 * Creates a backplane for a URI of its scheme. It must return promptly, even
 * when the backplane is unreachable: connecting happens in the background
 * (a node starts, and delivers locally, while its backplane is down). It may
 * throw for a URI it cannot use at all.
 */
export type BackplaneFactory = (url: URL, context: BackplaneContext) => Backplane | Promise<Backplane>;
