/**
 * The redis:// backplane's stream: the cluster's history in a Redis Stream
 * (docs/cluster.md#history-and-resume). Appends are `XADD <key> MAXLEN ~
 * <maxMessages> * m <payload>`, sent without waiting, in order on the
 * publishing connection; a connection of its own follows the stream with
 * blocking `XREAD`s, from where it left off. Entry ids are Redis's:
 * `<ms>-<n>`, increasing, the same on every node.
 */
import type { Redis } from 'ioredis';
import type { BackplaneStream, StreamContext } from '../../host/index.ts';

/** Entries one read takes at most; a blocking read returns as soon as there is one. */
const READ_COUNT = 1000;
/** How long a blocking read waits before it is made again (and a closed stream notices). */
const BLOCK_MS = 5000;

export class RedisStream implements BackplaneStream {
  /** The id of the last entry handed over; undefined before the first read. */
  private position: string | undefined;
  private closed = false;

  constructor(
    private readonly writer: Redis,
    private readonly reader: Redis,
    private readonly context: StreamContext,
    /** Whether the backplane is up, its reader included. */
    private readonly up: () => boolean,
  ) {}

  append(payload: string): boolean {
    if (!this.up()) return false;
    const { name, limits } = this.context;
    // One that fails now (the connection dropped mid-flight) is never read back; the cluster notices.
    this.writer.xadd(name, 'MAXLEN', '~', String(limits.maxMessages), '*', 'm', payload).catch(() => {});
    return true;
  }

  /**
   * The reader is (again) connected: the stream's past the first time, or
   * a check that nothing was lost since `position`; then `following` (from
   * now on what is appended is read live), then every new entry, until the
   * connection drops or the stream closes.
   */
  async follow(following: () => void): Promise<void> {
    try {
      if (this.position === undefined) await this.readPast();
      else if ((await this.reader.xrange(this.context.name, this.position, this.position)).length === 0) this.context.missed();
      following();
      while (!this.closed) {
        const read = await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.context.name, this.position!);
        for (const [id, fields] of read?.[0]?.[1] ?? []) this.hand(id, fields, true);
      }
    } catch {
      // The connection dropped (or closed): the next 'ready' follows again.
    }
  }

  close(): void {
    this.closed = true;
  }

  /** Retains the newest `maxMessages` entries, oldest first, for resumes; they are not delivered. */
  private async readPast(): Promise<void> {
    const past = await this.reader.xrevrange(this.context.name, '+', '-', 'COUNT', this.context.limits.maxMessages);
    this.position = '0-0';
    for (let i = past.length - 1; i >= 0; i--) this.hand(past[i]![0], past[i]![1], false);
  }

  private hand(id: string, fields: string[], live: boolean): void {
    this.position = id;
    if (fields[0] === 'm' && fields[1] !== undefined) this.context.entry(id, fields[1], Number(id.slice(0, id.indexOf('-'))), live);
  }
}
