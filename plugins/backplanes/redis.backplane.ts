/**
 * `redis://[user:password@]host:port` (and `rediss://` over TLS) — the
 * cluster backplane over Redis pub/sub, through ioredis. Transport only:
 * the cluster (core/cluster.ts) decides what to send.
 *
 * Two connections, because a Redis connection in subscriber mode cannot
 * publish. The publishing one has no offline queue: while Redis is down a
 * publish is dropped at once rather than queued (at-most-once, and no
 * memory growing with the outage). Both reconnect with exponential backoff
 * (100 ms doubling to 5 s); the subscriber resubscribes before the node is
 * reported connected again. With history on, a third connection follows the
 * cluster's stream (redis-stream.ts). Query parameters belong to the cluster
 * (`?prefix=`…) and are not passed to Redis.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { type Backplane, type BackplaneContext, definePlugin } from '../../host/index.ts';
import { RedisStream } from './redis-stream.ts';
import { settleWithin } from './settle.ts';

export default definePlugin({
  name: 'redis-backplane',
  register(api) {
    // The client library loads only when a node joins a cluster, not with every server.
    const factory = async (url: URL, context: BackplaneContext): Promise<Backplane> => new RedisBackplane((await import('ioredis')).Redis, url, context);
    api.backplanes.register('redis', factory);
    api.backplanes.register('rediss', factory);
  },
});

export class RedisBackplane implements Backplane {
  readonly stream: RedisStream | undefined;
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Follows the stream, with blocking reads: a connection of its own. */
  private readonly reader: Redis | undefined;
  private pubReady = false;
  private subReady = false;
  private readerReady = false;
  private up = false;
  private closed = false;
  private lastError: string | undefined;

  constructor(
    RedisClient: typeof Redis,
    url: URL,
    private readonly context: BackplaneContext,
  ) {
    const base: RedisOptions = {
      host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
      port: url.port ? Number(url.port) : 6379,
      username: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
      tls: url.protocol === 'rediss:' ? {} : undefined,
      connectionName: 'mist-backplane',
      retryStrategy: (attempt) => (this.closed ? null : context.reconnectDelay(attempt)),
    };
    this.pub = new RedisClient({ ...base, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    this.sub = new RedisClient({ ...base, autoResubscribe: false, maxRetriesPerRequest: null });
    const clients = [this.pub, this.sub];
    if (context.stream) {
      // A read under way when the connection drops fails at once, and the stream follows again, checking, on the next 'ready'.
      const reader = new RedisClient({ ...base, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
      const stream = new RedisStream(this.pub, reader, context.stream, () => this.up);
      reader.on('ready', () =>
        void stream.follow(() => {
          this.readerReady = true;
          this.update();
        }),
      );
      clients.push(reader);
      this.reader = reader;
      this.stream = stream;
    }

    this.pub.on('ready', () => {
      this.pubReady = true;
      this.update();
    });
    this.sub.on('ready', () => {
      this.sub.subscribe(...context.channels).then(
        () => {
          this.subReady = true;
          this.update();
        },
        (err: Error) => this.failed(err),
      );
    });
    for (const client of clients) {
      client.on('error', (err: Error) => this.failed(err));
      client.on('close', () => {
        if (client === this.pub) this.pubReady = false;
        else if (client === this.sub) this.subReady = false;
        else this.readerReady = false;
        this.update();
      });
    }
    this.sub.on('message', (channel: string, message: string) => context.receive(channel, message));
  }

  publish(channel: string, payload: string): boolean {
    if (!this.up || this.pub.status !== 'ready') return false;
    // A publish that fails after all (the connection dropped mid-flight) is lost, as at-most-once allows.
    this.pub.publish(channel, payload).catch(() => {});
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream?.close();
    // A blocking read would hold QUIT back for its whole wait.
    this.reader?.disconnect();
    await Promise.all(
      [this.pub, this.sub].map(async (client) => {
        // QUIT flushes what was published before it; a connection that is down is just dropped.
        if (client.status === 'ready') await settleWithin(client.quit(), 1000);
        client.disconnect();
      }),
    );
  }

  private failed(err: Error): void {
    this.lastError = err.message;
    this.context.logger.debug({ err: err.message }, 'redis backplane error');
    if (!this.up && !this.closed) this.context.disconnected(err.message);
  }

  private update(): void {
    if (this.closed) return;
    const up = this.pubReady && this.subReady && (this.readerReady || !this.reader);
    if (up === this.up) return;
    this.up = up;
    if (up) this.context.connected();
    else this.context.disconnected(this.lastError ?? 'connection closed');
  }
}
