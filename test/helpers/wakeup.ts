/**
 * How long the helpers wait for what a test expects (a reply, an exit, a
 * close, a state): generous, because the machine is small and shared and the
 * suite may run beside others, and a deadline costs time only when a test is
 * failing anyway. Under ava's 60 s timeout, so a failing wait says what it
 * waited for.
 */
export const WAIT_MS = 30_000;

/** Lets a test wait, with a deadline, for event handlers to say "something changed". */
export class Wakeup {
  private readonly waiters = new Set<() => void>();

  /** Resolves at the next {@link wake} or at `deadline` (a `Date.now()` time), whichever comes first. */
  wait(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters;
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  wake(): void {
    for (const done of [...this.waiters]) done();
  }
}
