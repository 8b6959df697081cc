/**
 * The unfinished input of a server's line-protocol connections (TCP, TLS,
 * and any listener built on `serveSocket`): the memory their lines under
 * way hold, against `maxPendingInputBytes` for all of them together, and
 * how long each line has waited for the rest of it, against `lineTimeoutMs`.
 *
 * Waiting is checked by one sweep for all connections rather than a timer
 * per connection: a framer only notes when its line began (framing complete
 * lines costs nothing more), and thousands of idle connections cost one
 * timer, which runs only while some connection is watched.
 */
import { inject, injectable } from 'tsyringe';
import type { InputBudget } from './framing.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { ConnectionInfo } from './session.ts';
import { TOKENS } from './tokens.ts';

/** Why a connection was closed for its input: over the server's budget, or a line left unfinished too long. */
export type InputRefusalReason = 'budget' | 'lineTimeout';

/** A connection's line under way, as the sweep sees it. */
export interface WatchedInput {
  /** Since when its line under way has waited on the client (`performance.now()`); NaN when none does. */
  readonly waitingSince: number;
  /** The line has waited `lineTimeoutMs`: refuse the connection. */
  timedOut(): void;
}

/** The sweep runs this often at most, so a line is refused within a second of its time (a quarter of it for short timeouts). */
const MAX_SWEEP_MS = 1000;
/** After a refusal logged at WARN, further ones are summed up in one WARN line per this many milliseconds. */
const WARN_EVERY_MS = 10_000;

const CLOSED_FOR: Record<InputRefusalReason, string> = {
  budget: 'connection closed: server input budget exhausted',
  lineTimeout: 'connection closed: line left unfinished',
};

@injectable()
export class PendingInput implements InputBudget {
  /** Bytes the lines under way hold now, all connections together. */
  bytes = 0;
  /** Connections closed for their input since start, by reason. */
  readonly refusals: Record<InputRefusalReason, number> = { budget: 0, lineTimeout: 0 };
  private readonly watched = new Set<WatchedInput>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Refusals not logged at WARN yet, while a summary is due. */
  private unreported: Record<InputRefusalReason, number> | undefined;
  private summary: NodeJS.Timeout | undefined;

  constructor(
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  reserve(bytes: number): boolean {
    if (this.bytes + bytes > this.limits.maxPendingInputBytes) return false;
    this.bytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.bytes -= bytes;
  }

  /** Checks `input`'s line against `lineTimeoutMs` until {@link unwatch}. */
  watch(input: WatchedInput): void {
    this.watched.add(input);
    this.sweeper ??= setInterval(this.sweep, Math.min(MAX_SWEEP_MS, this.limits.lineTimeoutMs / 4)).unref();
  }

  unwatch(input: WatchedInput): void {
    this.watched.delete(input);
    if (this.watched.size > 0) return;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Counts a connection closed for its input, and logs it: at DEBUG each,
   * at WARN the first after a quiet spell, then one summary every 10 s
   * while more come, so that a flood of hostile clients cannot flood the log.
   */
  refused(reason: InputRefusalReason, session: { id: number; info: ConnectionInfo }): void {
    this.refusals[reason]++;
    const fields = { session: session.id, ...session.info, reason };
    if (this.unreported) {
      this.unreported[reason]++;
      return this.logger.debug(fields, CLOSED_FOR[reason]);
    }
    this.logger.warn(fields, CLOSED_FOR[reason]);
    this.unreported = { budget: 0, lineTimeout: 0 };
    this.summary = setTimeout(this.summarize, WARN_EVERY_MS).unref();
  }

  /** Stops the sweep and logs the refusals not logged yet. The connections are gone by now. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    clearTimeout(this.summary);
    this.summary = undefined;
    this.logUnreported();
    this.unreported = undefined;
  }

  private readonly sweep = (): void => {
    const expired = performance.now() - this.limits.lineTimeoutMs;
    // NaN (nothing waiting) compares false.
    for (const input of this.watched) if (input.waitingSince <= expired) input.timedOut();
  };

  /** Ends a summary period: logs the refusals that came in it, if any, and starts another; else the next refusal is logged at once. */
  private readonly summarize = (): void => {
    this.unreported = this.logUnreported() ? { budget: 0, lineTimeout: 0 } : undefined;
    this.summary = this.unreported && setTimeout(this.summarize, WARN_EVERY_MS).unref();
  };

  /** Logs the refusals since the last WARN line in one WARN line; false when there were none. */
  private logUnreported(): boolean {
    const counts = this.unreported;
    const total = counts ? counts.budget + counts.lineTimeout : 0;
    if (total === 0) return false;
    this.logger.warn(counts, `${total} more connections closed for their unfinished input since the last warning`);
    return true;
  }
}
