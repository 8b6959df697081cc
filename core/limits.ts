/** What one connection may send and hold. Defaults are in host/defaults.ts. */
export interface Limits {
  /** A line or frame longer than this gets an error reply and the connection is closed. */
  maxMessageBytes: number;
  /** Most tags one message may carry. */
  maxTags: number;
  /** Longest tag, in UTF-8 bytes. */
  maxTagBytes: number;
  /** Subscriptions one connection may hold; a subscribe past it is refused (kind `limit`). */
  maxSubscriptionsPerConnection: number;
  /** Outbound bytes a connection may have queued before the slow-consumer policy applies. */
  maxBufferedBytes: number;
  /** `drop`: new messages for a full connection are dropped and counted; `disconnect`: it is closed. */
  slowConsumerPolicy: SlowConsumerPolicy;
  /**
   * Outgoing messages are written in batches, one write per connection per
   * flush, at most one flush per this many milliseconds (default 1). A
   * message after a quiet spell goes out at the end of the event-loop turn;
   * under steady load a longer interval means fewer, larger writes (less
   * CPU) and up to that much more latency. 0: flush at the end of every turn.
   */
  flushIntervalMs: number;
}

export type SlowConsumerPolicy = 'drop' | 'disconnect';
