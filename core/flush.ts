/**
 * Write coalescing for stream transports. A sink queues the frames it is
 * given and registers with a {@link FlushScheduler}; the scheduler flushes
 * every sink with something queued together, so a connection that gets many
 * messages between two flushes pays one write (one syscall) for all of them
 * instead of one each. At a few thousand messages a second, per-message
 * syscalls are most of a server's CPU time (see docs/performance.md).
 */

/** Something holding queued output until {@link flush}. */
export interface Flushable {
  /** Hands what is queued to the transport. */
  flush(): void;
}

/**
 * Flushes registered sinks together, at most once per `intervalMs`:
 *
 * - after a quiet spell (no flush in the last `intervalMs`), at the end of
 *   the current event-loop turn (`setImmediate`, once every input event of
 *   the turn has been handled) — a lone message or reply waits for nothing;
 * - under steady traffic, at the end of the first turn that queues something
 *   `intervalMs` or more after the previous flush ({@link touch}), so each
 *   connection gets one write per interval with everything queued meanwhile;
 * - when traffic stops before then, by a timer. Node's timers tick in whole
 *   milliseconds and fire late under load, so the timer is only the
 *   backstop: waiting on it alone made a 1 ms interval cost 1–2 ms.
 *
 * `intervalMs` 0 flushes at the end of every turn that queued something.
 * A larger interval trades latency (about the interval) for fewer, larger
 * writes. One scheduler serves many sinks: one timer per flush, not one per
 * sink or per message, and no closure per write.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  /** A flush is coming at the end of this turn. */
  private immediate = false;
  /** The backstop timer of a batch waiting for its interval (due at `last + intervalMs`), while there is one. */
  private timer: NodeJS.Timeout | undefined;
  /** When the last flush ran (`performance.now()`). */
  private last = -Infinity;

  constructor(readonly intervalMs: number) {}

  /** Flushes `sink` with the next batch. Call once per batch: when it goes from nothing queued to something. */
  add(sink: Flushable): void {
    this.dirty.push(sink);
    if (this.immediate) return;
    if (this.timer) return this.touch();
    const wait = this.intervalMs > 0 ? this.last + this.intervalMs - performance.now() : 0;
    if (wait > 0) {
      this.timer = setTimeout(this.run, wait);
    } else {
      this.immediate = true;
      setImmediate(this.run);
    }
  }

  /**
   * Tells the scheduler that a sink already waiting for the flush queued
   * more: when the batch is due, it goes at the end of this turn rather
   * than at the timer's next tick. Cheap enough to call per frame.
   */
  touch(): void {
    if (this.timer && performance.now() >= this.last + this.intervalMs) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.immediate = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.immediate = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.intervalMs > 0) this.last = performance.now();
    // Swap the lists, so a sink that queues again while being flushed joins the next batch.
    const batch = this.dirty;
    this.dirty = this.spare;
    this.spare = batch;
    for (let i = 0; i < batch.length; i++) batch[i]!.flush();
    batch.length = 0;
  };
}

/**
 * One connection's output between flushes: the byte strings it is given, in
 * order, handed to `write` as one buffer when its {@link FlushScheduler}
 * flushes (copying a few hundred bytes costs far less than a syscall, or
 * than a `writev` entry and a stream write each). Every stream transport's
 * sink keeps one, so lines, WebSocket frames and SSE events all go out with
 * the flush.
 */
export class OutputQueue implements Flushable {
  private queue: Buffer[] = [];
  /** Bytes queued. */
  private queued = 0;

  constructor(
    private readonly flusher: FlushScheduler,
    /** Hands a flush's bytes to the transport; called with at least one byte. */
    private readonly write: (bytes: Buffer) => void,
  ) {}

  /** Bytes queued and not yet written. */
  get length(): number {
    return this.queued;
  }

  push(bytes: Buffer): void {
    if (this.queued === 0) this.flusher.add(this);
    else this.flusher.touch();
    this.queue.push(bytes);
    this.queued += bytes.length;
  }

  flush(): void {
    if (this.queued === 0) return;
    const queue = this.queue;
    const bytes = queue.length === 1 ? queue[0]! : Buffer.concat(queue, this.queued);
    queue.length = 0;
    this.queued = 0;
    this.write(bytes);
  }

  /** Forgets what is queued (the connection is being destroyed). */
  clear(): void {
    this.queue.length = 0;
    this.queued = 0;
  }
}
