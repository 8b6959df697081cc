/**
 * The messages history retains, kept off the JavaScript heap: each one's
 * JSON text in slabs of bytes, its publisher and time in typed arrays.
 *
 * Retaining each message as objects (the frame, its text and encodings, a
 * record around them) made every one live long enough to be promoted to
 * the old generation and die there: at 2,000 messages a second V8 ran a
 * full mark-compact two or three times a second, each pausing every
 * delivery for milliseconds. Kept as bytes, a retained message is no object
 * at all until a replay reads it back.
 */
import { Fifo } from './fifo.ts';

/** Bytes per slab; a longer message gets a slab of its own. */
const SLAB_BYTES = 64 * 1024;
/** Entries the typed arrays hold at first; they double when full. */
const FIRST_CAPACITY = 1024;

export class RetainedLog {
  /** Entries held: the oldest is at `head` in the ring. */
  length = 0;
  /** Bytes of their JSON text in UTF-8, all together. */
  textBytes = 0;
  private head = 0;
  private capacity = FIRST_CAPACITY;
  private slab = new Uint32Array(FIRST_CAPACITY);
  private offset = new Uint32Array(FIRST_CAPACITY);
  private size = new Uint32Array(FIRST_CAPACITY);
  private publisher = new Float64Array(FIRST_CAPACITY);
  private time = new Float64Array(FIRST_CAPACITY);
  /** Slabs in use, oldest first; the first is slab number `firstSlab`, the last the one being filled. */
  private readonly slabs = new Fifo<Buffer>();
  private firstSlab = 0;
  private used = SLAB_BYTES;

  /** Appends a message: its JSON text (`bytes` long in UTF-8), publisher and time. */
  push(json: string, bytes: number, publisher: number, time: number): void {
    if (this.length === this.capacity) this.grow();
    if (this.slabs.length === 0 || this.used + bytes > this.slabs.last()!.length) {
      this.slabs.push(Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, bytes)));
      this.used = 0;
    }
    const at = (this.head + this.length++) & (this.capacity - 1);
    this.slab[at] = this.firstSlab + this.slabs.length - 1;
    this.offset[at] = this.used;
    this.size[at] = bytes;
    this.publisher[at] = publisher;
    this.time[at] = time;
    this.textBytes += bytes;
    this.used += this.slabs.last()!.write(json, this.used, bytes, 'utf8');
  }

  /** Drops the oldest entry, and the slabs only it still used. */
  shift(): void {
    this.textBytes -= this.size[this.head]!;
    this.head = (this.head + 1) & (this.capacity - 1);
    this.length--;
    const keep = this.length > 0 ? this.slab[this.head]! : this.firstSlab + this.slabs.length - 1;
    while (this.firstSlab < keep) {
      this.slabs.shift();
      this.firstSlab++;
    }
  }

  /** The JSON text of the entry `index` places from the oldest. */
  json(index: number): string {
    const at = this.place(index);
    const start = this.offset[at]!;
    return this.slabs.at(this.slab[at]! - this.firstSlab)!.toString('utf8', start, start + this.size[at]!);
  }

  publisherOf(index: number): number {
    return this.publisher[this.place(index)]!;
  }

  timeOf(index: number): number {
    return this.time[this.place(index)]!;
  }

  private place(index: number): number {
    return (this.head + index) & (this.capacity - 1);
  }

  /** Doubles the ring, the oldest entry first again. */
  private grow(): void {
    const capacity = this.capacity * 2;
    const move = <T extends Uint32Array | Float64Array>(from: T, to: T): T => {
      for (let i = 0; i < this.length; i++) to[i] = from[this.place(i)]!;
      return to;
    };
    this.slab = move(this.slab, new Uint32Array(capacity));
    this.offset = move(this.offset, new Uint32Array(capacity));
    this.size = move(this.size, new Uint32Array(capacity));
    this.publisher = move(this.publisher, new Float64Array(capacity));
    this.time = move(this.time, new Float64Array(capacity));
    this.head = 0;
    this.capacity = capacity;
  }
}
