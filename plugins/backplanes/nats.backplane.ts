/**
 * `nats://[user:password@|token@]host:port` — the cluster backplane over
 * NATS core pub/sub, through the official `nats` client. Transport only:
 * the cluster (core/cluster.ts) decides what to send.
 *
 * `noEcho` keeps a node's own publishes from coming back to it. Until the
 * first connection succeeds this plugin retries itself (so that closing
 * can stop it); after that the client reconnects forever, with exponential
 * backoff (100 ms doubling to 5 s), and restores the subscriptions. While
 * disconnected a publish is dropped, not buffered (at-most-once). With
 * history on, the cluster's stream is a JetStream stream (nats-stream.ts).
 * Query parameters belong to the cluster (`?prefix=`…).
 */
import type { ConnectionOptions, NatsConnection } from 'nats';
import { type Backplane, type BackplaneContext, definePlugin } from '../../host/index.ts';
import { NatsStream } from './nats-stream.ts';
import { settleWithin } from './settle.ts';

export default definePlugin({
  name: 'nats-backplane',
  register(api) {
    // The client library loads only when a node joins a cluster, not with every server.
    api.backplanes.register('nats', async (url, context) => new NatsBackplane(await import('nats'), url, context));
  },
});

export class NatsBackplane implements Backplane {
  readonly stream: NatsStream | undefined;
  private connection: NatsConnection | undefined;
  private up = false;
  private closed = false;
  private attempt = 0;
  /** When the current outage began, as seen by the client's reconnect loop. */
  private lostAt = 0;
  private askedAt = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly options: ConnectionOptions;
  /** Publish errors already logged. */
  private readonly refusals = new Set<string>();

  private readonly connect: (options: ConnectionOptions) => Promise<NatsConnection>;

  constructor(nats: typeof import('nats'), url: URL, private readonly context: BackplaneContext) {
    this.connect = nats.connect;
    if (context.stream) this.stream = new NatsStream(nats, context.stream, context, () => this.up);
    const user = url.username ? decodeURIComponent(url.username) : undefined;
    const pass = url.password ? decodeURIComponent(url.password) : undefined;
    this.options = {
      servers: `${url.hostname || '127.0.0.1'}:${url.port || 4222}`,
      name: 'mist-backplane',
      noEcho: true,
      reconnect: true,
      maxReconnectAttempts: -1,
      // The client asks for the delay on every turn of its reconnect loop, not once per failed attempt: so the
      // wait grows with the time since the loss instead — attempts at about 0.1, 0.2, 0.4… s, then every 5 s.
      reconnectDelayHandler: () => this.reconnectLoopDelay(),
      // Notice a dead server in seconds, not minutes.
      pingInterval: 5000,
      maxPingOut: 2,
      ...(user !== undefined && pass !== undefined ? { user, pass } : user !== undefined ? { token: user } : {}),
    };
    void this.dial();
  }

  publish(channel: string, payload: string): boolean {
    if (!this.up) return false;
    try {
      this.connection!.publish(channel, Buffer.from(payload));
      return true;
    } catch (err) {
      // MAX_PAYLOAD_EXCEEDED, typically: the server's max_payload is below mist's maxMessageBytes. Say so once.
      const message = (err as Error).message;
      if (!this.refusals.has(message)) {
        this.refusals.add(message);
        this.context.logger.warn({ err: message, bytes: Buffer.byteLength(payload) }, 'nats refused a publish (dropped)');
      }
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.up = false;
    this.stream?.close();
    clearTimeout(this.retry);
    const connection = this.connection;
    if (!connection || connection.isClosed()) return;
    // Flushing sends what was published (the cluster's goodbye) before the connection goes.
    await settleWithin(connection.flush(), 1000);
    await settleWithin(connection.close(), 1000);
  }

  private reconnectLoopDelay(): number {
    const now = Date.now();
    // The loop asks at least every 5 s while it runs: a longer pause means a new outage.
    if (now - this.askedAt > 6000) this.lostAt = now;
    this.askedAt = now;
    // The client dials once the time since its last dial reaches this: half the outage so far doubles the gaps.
    return Math.min(Math.max(100, (now - this.lostAt) / 2), 5000);
  }

  /** Connects, retrying with backoff until it succeeds or the backplane is closed. */
  private async dial(): Promise<void> {
    let connection: NatsConnection;
    try {
      connection = await this.connect(this.options);
    } catch (err) {
      if (this.closed) return;
      this.context.disconnected((err as Error).message);
      this.retry = setTimeout(() => void this.dial(), this.context.reconnectDelay(++this.attempt));
      return;
    }
    if (this.closed) {
      await connection.close();
      return;
    }
    this.connection = connection;
    for (const subject of this.context.channels) {
      connection.subscribe(subject, {
        callback: (err, msg) => {
          if (!err) this.context.receive(msg.subject, msg.string());
        },
      });
    }
    // The server has the subscriptions once a flush returns: the node hears the answers to its hello.
    await connection.flush().catch(() => {});
    await this.stream?.open(connection);
    if (this.closed) return;
    this.up = true;
    this.context.connected();
    void this.watch(connection);
  }

  /** Follows the connection's status until it closes for good. */
  private async watch(connection: NatsConnection): Promise<void> {
    void (async () => {
      for await (const status of connection.status()) {
        if (this.closed || this.connection !== connection) return;
        if (status.type === 'disconnect') {
          this.up = false;
          this.context.disconnected(`disconnected from ${String(status.data)}`);
        } else if (status.type === 'reconnect') {
          // A stream that stopped following (the server lost it, say) is opened again, from where it was.
          if (this.stream && !this.stream.following) await this.stream.open(connection);
          this.up = true;
          this.context.connected();
        }
      }
    })();
    await connection.closed();
    if (this.closed) return;
    // The client gave up on this connection (it should not: it retries forever). Start over.
    this.up = false;
    this.connection = undefined;
    this.context.disconnected('connection closed');
    this.retry = setTimeout(() => void this.dial(), this.context.reconnectDelay(++this.attempt));
  }
}
