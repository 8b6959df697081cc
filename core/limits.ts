/** What one connection may send and hold (SPEC §7). Defaults are in config/defaults.ts. */
export interface Limits {
  /** A line or frame longer than this gets an error reply and the connection is closed. */
  maxMessageBytes: number;
  /** Most tags one message may carry. */
  maxTags: number;
  /** Longest tag, in UTF-8 bytes. */
  maxTagBytes: number;
  /** Outbound bytes a connection may have queued before the slow-consumer policy applies. */
  maxBufferedBytes: number;
  /** `drop`: new messages for a full connection are dropped and counted; `disconnect`: it is closed. */
  slowConsumerPolicy: SlowConsumerPolicy;
  /**
   * How long outgoing messages may wait to be written together: 0 (the
   * default) writes at the end of each event-loop turn whatever that turn
   * queued, one write per connection; a few milliseconds batch more under
   * steady load, at the cost of up to that much latency.
   */
  flushDelayMs: number;
}

export type SlowConsumerPolicy = 'drop' | 'disconnect';
