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
 * Retained messages are kept in publish order, each as the JSON text every
 * subscriber was sent (its tags, to match the resuming connection's
 * subscriptions, are in it), with its publisher's session id (a connection
 * is never sent its own message), off the heap (core/retained-log.ts).
 * Trimming is done as messages come and when history is read, so no timer
 * runs.
 */
import { randomBytes } from 'node:crypto';
import { valueTextAt } from './json-text.ts';
import { Frame } from './protocol.ts';
import { RetainedLog } from './retained-log.ts';

/** How much history is kept; the first bound reached trims the oldest messages. */
export interface HistoryLimits {
  maxMessages: number;
  /** Bytes of the retained messages' JSON text, which is what the process holds of them (core/retained-log.ts), plus up to 64 bytes each. */
  maxBytes: number;
  maxAgeMs: number;
}

/** A retained message, as read back. */
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
  private readonly entries = new RetainedLog();
  /** The seq of each retained message whose id is a stream's, and the other way round. */
  private readonly streamed = new Map<string, number>();
  private readonly streamIds = new Map<number, string>();
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
    const frame = Frame.publish(tags, data, id ?? this.localId(seq));
    if (id !== undefined) {
      this.streamed.set(id, seq);
      this.streamIds.set(seq, id);
    }
    const now = Date.now();
    this.entries.push(frame.json, frame.byteLength, publisher, time ?? now);
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
    return this.entries.textBytes;
  }

  /** The seq of the oldest message retained; `lastSeq + 1` when none is. */
  get firstSeq(): number {
    return this.lastSeq - this.entries.length + 1;
  }

  /** The retained message `seq`, read back; undefined once it is trimmed (or before it exists). */
  at(seq: number): Retained | undefined {
    const index = seq - this.firstSeq;
    if (index < 0 || index >= this.entries.length) return undefined;
    const json = this.entries.json(index);
    return {
      seq,
      tags: tagsOf(json),
      frame: new Frame(json, this.streamIds.get(seq) ?? this.localId(seq)),
      publisher: this.entries.publisherOf(index),
      time: this.entries.timeOf(index),
    };
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
    while (this.entries.length > 0) {
      if (this.entries.length <= limits.maxMessages && this.entries.textBytes <= limits.maxBytes && this.entries.timeOf(0) > expired) return;
      const seq = this.firstSeq;
      this.entries.shift();
      const streamId = this.streamIds.get(seq);
      if (streamId !== undefined) {
        this.streamIds.delete(seq);
        this.streamed.delete(streamId);
      }
      while (this.gaps.length > 0 && this.gaps[0]! <= seq) this.gaps.shift();
    }
  }

  /** The id of this server's message `seq`. */
  private localId(seq: number): string {
    return this.prefix + seq.toString(36);
  }
}

const TAGS_START = '{"command":"publish","tags":'.length;

/** The tags of a retained message's JSON text (as Frame.publish wrote it), without parsing its data. */
function tagsOf(json: string): string[] {
  return JSON.parse(valueTextAt(json, TAGS_START)) as string[];
}
