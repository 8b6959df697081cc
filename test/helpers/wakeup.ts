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
