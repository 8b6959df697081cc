/**
 * `resume`: sends a connection the retained messages it missed after an id,
 * in id order, then says whether history reached back that far
 * (docs/protocol.md#resume).
 *
 * What is sent: each retained message after the id, up to the newest one
 * when the command is handled (the watermark), that matches one of the
 * connection's subscriptions now, was not published by it, and was not
 * sent to it live. A message was sent live through a subscription taken
 * before the message was delivered (`Session.subscribedAt` against its
 * seq; the broker makes that exact for a subscription taken while a match
 * was sliced); so a client that subscribes, receives a message, then
 * resumes is not sent that message twice. Permissions are those of live
 * delivery: the connection's subscriptions, which its token allowed and
 * which a token change takes away (a subscription dropped during the
 * replay stops matching at once). The answer is `gap` when the id is not
 * one of the retained messages' (nor the one just before the oldest), or a
 * gap the history knows of (core/history.ts, `markGap`) lies after it.
 *
 * Order against live delivery — no duplicate, no hole:
 * - Ids are given when a message is delivered, to every session its match
 *   reached at once (core/broker.ts), so every message up to the watermark
 *   has been delivered, and none after it has.
 * - A message after the watermark is delivered after the replay began, to
 *   sessions its match reached through the subscriptions the replay also
 *   reads, and so reaches the connection live — and only live, as it is
 *   past the watermark.
 * - A replay that fits in one slice is sent at once, before anything else
 *   can run. One that takes longer (many messages, a client slow to read)
 *   holds the connection's live deliveries back until it is done, then
 *   sends them: live messages come after the replayed ones.
 *
 * A replay is done a slice a turn (`SLICE_MS`), as a session's input is,
 * and waits while the client's buffer is half full: it never drops a
 * message and leaves room for live ones, which the slow-consumer policy
 * governs as ever. If messages it has not reached are trimmed meanwhile, it
 * goes on from the oldest left and answers `gap`.
 */
import type { History, Retained } from './history.ts';
import { SubscriptionIndex } from './matcher.ts';
import type { Session } from './session.ts';
import { SLICE_MS, SlicedWork } from './slices.ts';

/** `success`: history reached back to the id; `gap`: messages may be missing. */
export type ResumeOutcome = 'success' | 'gap';

/** Replays to `session` what it missed after `id`. Resolves (or returns, when done at once) with the outcome. */
export function replay(session: Session, history: History, id: string): ResumeOutcome | Promise<ResumeOutcome> {
  history.stats.replays++;
  if (!history.enabled) return gap(history);
  history.trim();
  const after = history.seqOf(id);
  const first = history.firstSeq;
  const reached = after !== undefined && after >= first - 1;
  const replay = new Replay(session, history, reached ? after + 1 : first, !reached || history.gapAfter(after));
  return replay.start();
}

function gap(history: History): 'gap' {
  history.stats.gaps++;
  return 'gap';
}

class Replay {
  /** The next seq to look at. */
  private next: number;
  /** The watermark: the newest seq when the command came. */
  private readonly until: number;
  /** The session's subscriptions, each held by its key. */
  private readonly index = new SubscriptionIndex<string>();
  /** What is left to add to the index. */
  private readonly toIndex: Iterator<[string, readonly string[]]>;
  private indexed = false;
  /** The message being matched, and what matching it found. */
  private entry: Retained | undefined;
  private matched = false;
  private sentLive = false;
  private readonly visit = (key: string): void => {
    const since = this.session.subscribedAt.get(key);
    // Dropped meanwhile: its token lost the tags.
    if (since === undefined || !this.session.subscriptions.has(key)) return;
    this.matched = true;
    if (since < this.entry!.seq) this.sentLive = true;
  };
  private readonly turns = new SlicedWork(() => this.slice());
  private settle: ((outcome: ResumeOutcome) => void) | undefined;
  private outcome: ResumeOutcome | undefined;

  constructor(
    private readonly session: Session,
    private readonly history: History,
    from: number,
    private gapped: boolean,
  ) {
    this.next = from;
    this.until = history.lastSeq;
    this.toIndex = session.subscriptions.entries();
  }

  /** Runs the first slice now; if that is not all, holds live deliveries back and goes on in later turns. */
  start(): ResumeOutcome | Promise<ResumeOutcome> {
    if (this.slice()) {
      if (this.outcome) return this.outcome;
    } else {
      this.turns.schedule();
    }
    this.session.holdDeliveries();
    return new Promise((resolve) => (this.settle = resolve));
  }

  /** One turn's work. Returns true when done, or when waiting for the client to read. */
  private slice(): boolean {
    const started = performance.now();
    for (;;) {
      if (!this.session.isOpen || this.next > this.until) return this.finish();
      if (!this.indexed) {
        const next = this.toIndex.next();
        if (next.done) this.indexed = true;
        else this.index.add(next.value[1], next.value[0]);
      } else if (this.next < this.history.firstSeq) {
        // Trimmed before the replay reached it.
        this.gapped = true;
        this.next = this.history.firstSeq;
      } else {
        const entry = this.history.at(this.next++)!;
        if (this.wanted(entry)) {
          this.history.stats.replayed++;
          if (!this.session.sendReplayed(entry.frame)) {
            this.session.whenDrained(() => this.turns.schedule());
            return true;
          }
        }
      }
      if (performance.now() - started >= SLICE_MS) return false;
    }
  }

  private wanted(entry: Retained): boolean {
    if (entry.publisher === this.session.id) return false;
    this.entry = entry;
    this.matched = this.sentLive = false;
    this.index.match(entry.tags, this.visit);
    return this.matched && !this.sentLive;
  }

  private finish(): true {
    const outcome = this.gapped ? gap(this.history) : 'success';
    this.outcome = outcome;
    this.session.releaseDeliveries();
    this.settle?.(outcome);
    return true;
  }
}
