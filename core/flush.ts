/**
 * Write coalescing for stream transports. A sink queues the frames it is
 * given and registers with a {@link FlushScheduler}; once per event-loop turn
 * (or after a bounded delay) the scheduler flushes every sink that has
 * something queued, so a connection that gets many messages in one turn pays
 * one syscall for all of them instead of one each. At a few thousand
 * messages a second per-message syscalls are most of a server's CPU time.
 */

/** Something holding queued output until {@link flush}. */
export interface Flushable {
  /** Hands what is queued to the transport. */
  flush(): void;
}

/**
 * Flushes registered sinks together: with `delayMs` 0 at the end of the
 * current event-loop turn (`setImmediate`, after every input event of the
 * turn has been handled), otherwise `delayMs` milliseconds after the first
 * write since the last flush. A delay trades latency (up to `delayMs` more)
 * for fewer, larger writes when messages arrive one per turn.
 *
 * One scheduler serves many sinks: one timer per turn, not one per sink or
 * per message, and no closure per write.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  private scheduled = false;

  constructor(readonly delayMs: number) {}

  /** Flushes `sink` with the next batch. Call once per batch: when it goes from nothing queued to something. */
  add(sink: Flushable): void {
    this.dirty.push(sink);
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.delayMs > 0) setTimeout(this.run, this.delayMs);
    else setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    // Swap the lists, so a sink that queues again while being flushed joins the next batch.
    const batch = this.dirty;
    this.dirty = this.spare;
    this.spare = batch;
    for (let i = 0; i < batch.length; i++) batch[i]!.flush();
    batch.length = 0;
  };
}
