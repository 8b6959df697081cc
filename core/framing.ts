/**
 * Newline framing for stream transports: one message per
 * `\n`-terminated line, `\r\n` accepted, blank lines ignored, and no line
 * longer than the limit — a longer one is reported as soon as it is known,
 * without waiting for (or buffering) the rest of it.
 */
export interface LineHandler {
  /** One line's bytes, without its `\n` or `\r\n`; decoding is the protocol's business. */
  line(bytes: Buffer): void;
  /** The line under way is already longer than the limit; framing stops. */
  oversized(): void;
}

const NEWLINE = 0x0a;
const RETURN = 0x0d;

export class LineFramer {
  /** Bytes of the line under way that arrived in earlier chunks. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private stopped = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly handler: LineHandler,
  ) {}

  /** Feeds a chunk of bytes from the stream. */
  push(chunk: Buffer): void {
    let start = 0;
    while (!this.stopped) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        this.keep(chunk, start);
        return;
      }
      // As in keep(): the `\r` of a `\r\n`, in this chunk or the last kept one, is not part of the line.
      const beforeNewline = end > start ? chunk[end - 1] : this.partial.at(-1)?.at(-1);
      const lineBytes = this.partialBytes + end - start - (beforeNewline === RETURN ? 1 : 0);
      if (lineBytes > this.maxLineBytes) return this.stop();
      let line: Buffer = chunk.subarray(start, end);
      if (this.partialBytes > 0) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
        this.partialBytes = 0;
      }
      start = end + 1;
      if (lineBytes > 0) this.handler.line(line.subarray(0, lineBytes));
    }
  }

  private keep(chunk: Buffer, start: number): void {
    if (start === chunk.length) return;
    this.partialBytes += chunk.length - start;
    // A `\r` awaiting its `\n` is not part of the line's length.
    const pending = chunk[chunk.length - 1] === RETURN ? this.partialBytes - 1 : this.partialBytes;
    if (pending > this.maxLineBytes) return this.stop();
    // Copy: a slice would keep the whole chunk alive until the line ends.
    this.partial.push(Buffer.from(chunk.subarray(start)));
  }

  private stop(): void {
    this.stopped = true;
    this.partial = [];
    this.partialBytes = 0;
    this.handler.oversized();
  }
}
