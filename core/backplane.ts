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
}

/**
 * Creates a backplane for a URI of its scheme. It must return promptly, even
 * when the backplane is unreachable: connecting happens in the background
 * (a node starts, and delivers locally, while its backplane is down). It may
 * throw for a URI it cannot use at all.
 */
export type BackplaneFactory = (url: URL, context: BackplaneContext) => Backplane | Promise<Backplane>;
