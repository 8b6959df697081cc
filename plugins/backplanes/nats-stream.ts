/**
 * The nats:// backplane's stream: the cluster's history in a JetStream
 * stream (docs/cluster.md#history-and-resume), created (or its limits
 * updated) when a node connects: subject `<prefix>.history`, limits from
 * the history's (count, bytes, age; the oldest go first), file storage.
 * Appends are plain publishes on that subject, which JetStream stores
 * without an acknowledgement to wait for; an ordered consumer follows the
 * stream from where this node left off. Entry ids are the stream's
 * sequence numbers, the same on every node. A NATS server without
 * JetStream has no stream: the node says so and its history is its own.
 */
import type { ConsumerMessages, NatsConnection } from 'nats';
import type { BackplaneContext, BackplaneStream, StreamContext } from '../../host/index.ts';

type Nats = typeof import('nats');

/** JetStream stream names may not hold dots. */
function streamName(name: string): string {
  return name.replace(/\./g, '_');
}

export class NatsStream implements BackplaneStream {
  /** The sequence of the last entry handed over; 0 before the first. */
  private position = 0;
  /** Entries up to this one, when the node first connected, are the stream's past: kept, not delivered. */
  private pastUntil = 0;
  private connection: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  private closed = false;

  constructor(
    private readonly nats: Nats,
    private readonly context: StreamContext,
    private readonly backplane: BackplaneContext,
    /** Whether the backplane is connected. */
    private readonly up: () => boolean,
  ) {}

  append(payload: string): boolean {
    if (!this.messages || !this.up()) return false;
    try {
      this.connection!.publish(this.context.name, Buffer.from(payload));
      return true;
    } catch {
      // Over the server's max_payload: the caller sends it the pub/sub way, which says why.
      return false;
    }
  }

  /** Makes sure the stream exists with the history's limits, then follows it; resolves once following. False: no JetStream. */
  async open(connection: NatsConnection): Promise<boolean> {
    this.connection = connection;
    const { StorageType, DiscardPolicy, DeliverPolicy } = this.nats;
    const { name, limits } = this.context;
    const config = {
      subjects: [name],
      max_msgs: limits.maxMessages,
      max_bytes: limits.maxBytes,
      max_age: this.nats.nanos(limits.maxAgeMs),
      discard: DiscardPolicy.Old,
      storage: StorageType.File,
    };
    try {
      const manager = await connection.jetstreamManager();
      const info = await manager.streams.info(streamName(name)).catch(() => undefined);
      const state = info
        ? (await manager.streams.update(streamName(name), config)).state
        : (await manager.streams.add({ name: streamName(name), ...config })).state;
      if (this.position === 0) {
        this.pastUntil = state.last_seq;
        this.position = Math.max(1, state.first_seq, state.last_seq - limits.maxMessages + 1) - 1;
      }
      const consumer = await connection.jetstream().consumers.get(streamName(name), {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.position + 1,
      });
      this.messages = await consumer.consume();
    } catch (err) {
      this.backplane.logger.warn({ err: (err as Error).message }, 'no JetStream stream for the history: each node keeps its own');
      return false;
    }
    void this.follow(this.messages);
    return true;
  }

  /** Whether it follows the stream now (else the backplane opens it again once connected). */
  get following(): boolean {
    return this.messages !== undefined;
  }

  close(): void {
    this.closed = true;
    void this.messages?.close();
  }

  private async follow(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const message of messages) {
        if (this.closed) break;
        const seq = message.seq;
        // Sequences have no holes but what the stream trimmed (or lost) before this node read it.
        if (seq > this.position + 1 && this.position > 0) this.context.missed();
        this.position = seq;
        this.context.entry(String(seq), message.string(), Math.round(message.info.timestampNanos / 1e6), seq > this.pastUntil);
      }
    } catch (err) {
      if (!this.closed) this.backplane.logger.warn({ err: (err as Error).message }, 'following the history stream failed');
    }
    if (this.messages === messages) this.messages = undefined;
  }
}
