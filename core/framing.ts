/**
 * Newline framing for stream transports: one message per
 * `\n`-terminated line, `\r\n` accepted, blank lines ignored, and no line
 * longer than the limit — a longer one is reported as soon as it is known,
 * without waiting for (or buffering) the rest of it.
 *
 * A line under way costs about its own bytes: it is kept in one buffer that
 * doubles as it grows (up to the limit), so a line sent a byte per packet
 * costs no more than one sent at once. The buffer's memory is taken from an
 * {@link InputBudget}, so that a server can bound the unfinished input of
 * all its connections together.
 */
export interface LineHandler {
  /** One line's bytes, without its `\n` or `\r\n`; decoding is the protocol's business. */
  line(bytes: Buffer): void;
  /** The line under way is already longer than the limit; framing stops. */
  oversized(): void;
  /** The line under way needs more memory than the budget has left; framing stops. Only a framer given a budget runs out. */
  overBudget?(): void;
}

/** Memory for lines under way, shared by many framers (see core/pending-input.ts). */
export interface InputBudget {
  /** Takes `bytes` from the budget; false, taking nothing, when that would go over it. */
  reserve(bytes: number): boolean;
  /** Gives back bytes {@link reserve} took. */
  release(bytes: number): void;
}

/** For a framer on its own: any amount. */
export const UNLIMITED_BUDGET: InputBudget = { reserve: () => true, release() {} };

const NEWLINE = 0x0a;
const RETURN = 0x0d;
const EMPTY = Buffer.alloc(0);

export class LineFramer {
  /** The line under way: its first {@link length} bytes; all of it is reserved from the budget. */
  private buffer: Buffer = EMPTY;
  private length = 0;
  private stopped = false;
  /** When the line under way began (`performance.now()`); NaN while there is none. */
  unfinishedSince = NaN;

  constructor(
    private readonly maxLineBytes: number,
    private readonly handler: LineHandler,
    private readonly budget: InputBudget = UNLIMITED_BUDGET,
  ) {}

  /** Bytes held for the line under way: at most about twice its length. */
  get heldBytes(): number {
    return this.buffer.length;
  }

  /** Feeds a chunk of bytes from the stream. */
  push(chunk: Buffer): void {
    let start = 0;
    while (!this.stopped) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) return this.keep(chunk, start);
      // As in keep(): the `\r` of a `\r\n`, in this chunk or the kept bytes, is not part of the line.
      const beforeNewline = end > start ? chunk[end - 1] : this.buffer[this.length - 1];
      const lineBytes = this.length + end - start - (beforeNewline === RETURN ? 1 : 0);
      if (lineBytes > this.maxLineBytes) return this.stop('oversized');
      const line = this.length === 0 ? chunk.subarray(start, end) : this.complete(chunk.subarray(start, end));
      start = end + 1;
      if (lineBytes > 0) this.handler.line(line.subarray(0, lineBytes));
    }
  }

  /**
   * Stops framing and gives the kept bytes back to the budget: the
   * connection is closing, or its line waited too long. Idempotent.
   */
  close(): void {
    this.stopped = true;
    this.drop();
  }

  /** Keeps the rest of `chunk`, from `start`, as the start of (or more of) the line under way. */
  private keep(chunk: Buffer, start: number): void {
    if (start === chunk.length) return;
    const total = this.length + chunk.length - start;
    // A `\r` awaiting its `\n` is not part of the line's length.
    const pending = chunk[chunk.length - 1] === RETURN ? total - 1 : total;
    if (pending > this.maxLineBytes) return this.stop('oversized');
    if (total > this.buffer.length && !this.grow(total)) return this.stop('overBudget');
    if (this.length === 0) this.unfinishedSince = performance.now();
    chunk.copy(this.buffer, this.length, start);
    this.length = total;
  }

  /**
   * Makes room for `needed` bytes, doubling (a line arriving in many small
   * chunks is copied about twice in all, not once per chunk), but never
   * past the longest line and its `\r`. False when the budget refuses.
   */
  private grow(needed: number): boolean {
    const capacity = Math.min(Math.max(needed, 2 * this.buffer.length), this.maxLineBytes + 1);
    if (!this.budget.reserve(capacity - this.buffer.length)) return false;
    const buffer = Buffer.allocUnsafe(capacity);
    this.buffer.copy(buffer, 0, 0, this.length);
    this.buffer = buffer;
    return true;
  }

  /**
   * The kept bytes followed by `rest`, as one buffer handed over to the
   * caller (the handler may keep it): the framer starts afresh.
   */
  private complete(rest: Buffer): Buffer {
    const total = this.length + rest.length;
    let line = this.buffer;
    if (total > line.length) {
      line = Buffer.allocUnsafe(total);
      this.buffer.copy(line, 0, 0, this.length);
    }
    rest.copy(line, this.length);
    this.drop();
    return line.subarray(0, total);
  }

  /** Forgets the line under way and gives its memory back to the budget. */
  private drop(): void {
    this.budget.release(this.buffer.length);
    this.buffer = EMPTY;
    this.length = 0;
    this.unfinishedSince = NaN;
  }

  private stop(report: 'oversized' | 'overBudget'): void {
    this.close();
    this.handler[report]?.();
  }
}
