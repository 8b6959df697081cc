/**
 * How much one piece of work may do before the rest waits for a later
 * event-loop turn, so that no single client holds the loop for long and
 * every other connection is served in between (docs/architecture.md):
 * a publish's match, a session's input, a closed connection's teardown.
 * Each is a few milliseconds, against the tens of seconds a crafted
 * workload took in one go before.
 */

/**
 * Steps of a publish's match per turn (a step is a trie child or a message
 * tag examined; see `SubscriptionIndex.start`). Measured on the crafted
 * worst case (24 of a 64-tag message's tags plus a popular missing tag,
 * 200k subscriptions): about 12k steps a millisecond, so a slice is about
 * 2 ms. A normal match never pauses: against a million random
 * subscriptions an 8-tag message takes under a hundred steps and a 64-tag
 * one under 4k, and the fan-out and matcher benchmarks stay far below it.
 */
export const MATCH_SLICE_STEPS = 20_000;

/**
 * Milliseconds a slice of other work takes before the rest waits for the
 * next turn: a session's input (what else one read delivered waits in its
 * backlog; all sessions' together are bounded too, by {@link TURN_INPUT_MS})
 * and a closed connection's teardown (a removal costs 5–20 µs in a large
 * index, too varied for a fixed count).
 */
export const SLICE_MS = 2;

/**
 * Milliseconds the input of all sessions together may take in one turn
 * before every session's slice shrinks to {@link MIN_SLICE_MS}: ten
 * connections flooding subscribes would otherwise take a slice each, and
 * hold the turn 20 ms.
 */
export const TURN_INPUT_MS = 4;

/** Milliseconds of input a session still has in a turn past {@link TURN_INPUT_MS}, after its first frame. */
export const MIN_SLICE_MS = 0.1;

let turn = 0;
let ticking = false;
/** The turn whose input is being timed, and since when (see {@link turnInputSpent}). */
let inputTurn = -1;
let inputStarted = 0;

/**
 * A number that differs from one event-loop turn to the next, for work
 * budgeted per turn. The first read in a turn schedules its end (one
 * `setImmediate` a turn, shared by every reader).
 */
export function currentTurn(): number {
  if (!ticking) {
    ticking = true;
    setImmediate(nextTurn);
  }
  return turn;
}

function nextTurn(): void {
  ticking = false;
  turn++;
}

/**
 * Whether turn `current` has spent its input budget ({@link TURN_INPUT_MS})
 * by `now`; the first call in a turn starts the timing.
 */
export function turnInputSpent(current: number, now: number): boolean {
  if (inputTurn !== current) {
    inputTurn = current;
    inputStarted = now;
    return false;
  }
  return now - inputStarted >= TURN_INPUT_MS;
}

/**
 * Work done a slice a turn: `slice` runs after the turn's I/O
 * (`setImmediate`), once a turn, for as long as it returns false (more to
 * do). {@link schedule} starts it; scheduling it again meanwhile changes
 * nothing.
 */
export class SlicedWork {
  private scheduled = false;

  constructor(private readonly slice: () => boolean) {}

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (!this.slice()) this.schedule();
  };
}
