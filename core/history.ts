/**
 * The recent past a reconnecting client resumes from (docs/protocol.md#resume):
 * every publish gets an id, and the newest messages are retained, bounded
 * by count, bytes and age, whichever bites first.
 *
 * An id is `<epoch>-<seq>`, `seq` in base 36 to keep every frame short: the
 * epoch is six letters drawn at random when the server starts, so an id
 * from before a restart is told apart (a gap), and `seq` counts the
 * publishes of this start. Clients treat ids as opaque. In a cluster with
 * a durable stream (core/cluster.ts) a message carries the stream's id
 * instead, the same on every node, and this history mirrors the stream; a
 * gap the node knows of (messages it could not send through the stream or
 * did not get from it) is marked, so that a resume across it says so.
 *
 * Retained messages are kept in publish order, each with the frame every
 * subscriber was sent (so a replay encodes nothing), its tags (to match the
 * resuming connection's subscriptions) and its publisher's session id (a
 * connection is never sent its own message). Trimming is done as messages
 * come and when history is read, so no timer runs.
 */
import { randomBytes } from 'node:crypto';
import { Fifo } from './fifo.ts';
import { Frame } from './protocol.ts';

/** How much history is kept; the first bound reached trims the oldest messages. */
export interface HistoryLimits {
  maxMessages: number;
  /** Bytes of the retained messages as encoded (the process holds about two to three times that: the text and each transport's encoding). */
  maxBytes: number;
  maxAgeMs: number;
}

/** A retained message. */
export interface Retained {
  /** Its place in this history: consecutive, from 1. */
  readonly seq: number;
  readonly tags: readonly string[];
  /** As subscribers were sent it, its id included. */
  readonly frame: Frame;
  /** The session id of the connection that published it; 0 for none (a message from another node). */
  readonly publisher: number;
  /** When it was published (ms since the epoch). */
  readonly time: number;
}

export class History {
  /** Resume was asked for and answered; answered `gap`; messages replayed. */
  readonly stats = { replays: 0, gaps: 0, replayed: 0 };
  /** The seq of the newest publish; 0 before the first. */
  lastSeq = 0;
  /** Letters only, so that no stream id (digits) can look like one of these. */
  private readonly prefix = `${Array.from(randomBytes(6), (byte) => String.fromCharCode(97 + (byte % 26))).join('')}-`;
  private readonly entries = new Fifo<Retained>();
  private retainedBytes = 0;
  /** The seq of each retained message whose id is a stream's. */
  private readonly streamed = new Map<string, number>();
  /** Seqs before which messages may be missing (see {@link markGap}), oldest first. */
  private readonly gaps: number[] = [];

  /** `false`: history is off — messages get no id and nothing is retained. */
  constructor(readonly limits: HistoryLimits | false) {}

  get enabled(): boolean {
    return this.limits !== false;
  }

  /**
   * Encodes a publish for its subscribers and, with history on, retains it
   * under the next id — or under `id`, a cluster stream's, published at
   * `time`. Called once per publish, in delivery order.
   */
  record(publisher: number, tags: readonly string[], data: string | undefined, id?: string, time?: number): Frame {
    if (!this.limits) return Frame.publish(tags, data, id);
    const seq = ++this.lastSeq;
    const frame = Frame.publish(tags, data, id ?? this.prefix + seq.toString(36));
    if (id !== undefined) this.streamed.set(id, seq);
    const now = Date.now();
    this.entries.push({ seq, tags, frame, publisher, time: time ?? now });
    this.retainedBytes += frame.byteLength;
    this.trim(now);
    return frame;
  }

  /**
   * Messages may be missing after the newest one retained: a resume from
   * before here answers `gap` (core/replay.ts).
   */
  markGap(): void {
    if (this.limits && this.gaps.at(-1) !== this.lastSeq + 1) this.gaps.push(this.lastSeq + 1);
  }

  /** Whether messages may be missing after the message `seq`, among those up to the newest. */
  gapAfter(seq: number): boolean {
    return this.gaps.length > 0 && this.gaps.at(-1)! > seq;
  }

  /** Messages retained now. */
  get size(): number {
    this.trim();
    return this.entries.length;
  }

  /** Their bytes as encoded. */
  get bytes(): number {
    this.trim();
    return this.retainedBytes;
  }

  /** The seq of the oldest message retained; `lastSeq + 1` when none is. */
  get firstSeq(): number {
    return this.entries.peek()?.seq ?? this.lastSeq + 1;
  }

  /** The retained message `seq`; undefined once it is trimmed (or before it exists). */
  at(seq: number): Retained | undefined {
    return this.entries.at(seq - this.firstSeq);
  }

  /**
   * The seq of the message `id` names, if this server issued it since it
   * started or it is a retained stream id; undefined for anything else
   * (another start, another server, trimmed, not an id at all): the
   * client's place cannot be known, which is a gap.
   */
  seqOf(id: string): number | undefined {
    if (!this.limits) return undefined;
    if (!id.startsWith(this.prefix)) return this.streamed.get(id);
    const digits = id.slice(this.prefix.length);
    if (!/^[1-9a-z][0-9a-z]{0,9}$/.test(digits)) return undefined;
    const seq = parseInt(digits, 36);
    return seq <= this.lastSeq ? seq : undefined;
  }

  /** Drops the oldest messages while any bound is passed. */
  trim(now = Date.now()): void {
    const limits = this.limits;
    if (!limits) return;
    const expired = now - limits.maxAgeMs;
    for (let oldest = this.entries.peek(); oldest; oldest = this.entries.peek()) {
      if (this.entries.length <= limits.maxMessages && this.retainedBytes <= limits.maxBytes && oldest.time > expired) return;
      this.entries.shift();
      this.retainedBytes -= oldest.frame.byteLength;
      if (this.streamed.size > 0) this.streamed.delete(oldest.frame.id!);
      while (this.gaps.length > 0 && this.gaps[0]! <= oldest.seq) this.gaps.shift();
    }
  }
}
