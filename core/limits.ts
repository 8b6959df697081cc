/** What one connection may send and hold, and how long it may take to authenticate. Defaults are in host/defaults.ts. */
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
  /**
   * Bytes all line-protocol connections of the server together may hold in
   * lines not yet finished. The connection whose line would take the total
   * past it gets an error reply and is closed.
   */
  maxPendingInputBytes: number;
  /** A line left unfinished this long (while the server reads) gets an error reply and its connection is closed. */
  lineTimeoutMs: number;
  /**
   * On shutdown, connections get this long to be answered what they sent and
   * to flush; whatever is still open then is destroyed.
   */
  shutdownTimeoutMs: number;
  /**
   * With an authenticator, a line or WebSocket connection that has not
   * authenticated within this many milliseconds of opening gets an error
   * reply and is closed.
   */
  authTimeoutMs: number;
  /** With an authenticator, a token that is not right is answered only after this many milliseconds (core/guard.ts). */
  authFailureDelayMs: number;
  /**
   * With an authenticator, the most token checks one address (an IPv6 /64)
   * may have under way at once, failure delays included; more are refused
   * at once (core/guard.ts).
   */
  maxUnauthenticatedPerAddress: number;
}

export type SlowConsumerPolicy = 'drop' | 'disconnect';
