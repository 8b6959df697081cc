/**
 * Redis and NATS for the cluster tests: is the shared service up, a private
 * server on a free port that a test can kill and restart, and a raw
 * subscriber that counts what crosses a channel.
 *
 * A test may skip only when a service is unreachable AND
 * `MIST_REQUIRE_SERVICES` is unset (CI sets it, so CI never skips).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect as connectTcp } from 'node:net';
import type { ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { connect as connectNats, type NatsConnection } from 'nats';
import { tempFolder } from './files.ts';

export type BackplaneKind = 'redis' | 'nats';

export const SERVICE_PORTS: Record<BackplaneKind, number> = { redis: 6379, nats: 4222 };

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function reachable(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether the shared `kind` service is up. When it is not: throws if
 * `MIST_REQUIRE_SERVICES` is set, else returns false (the caller skips, saying why).
 */
export async function serviceAvailable(kind: BackplaneKind): Promise<boolean> {
  const port = SERVICE_PORTS[kind];
  if (await reachable(port)) return true;
  if (process.env.MIST_REQUIRE_SERVICES) {
    throw new Error(`${kind} is not reachable on 127.0.0.1:${port}, and MIST_REQUIRE_SERVICES is set`);
  }
  console.warn(`# skipping ${kind} cluster tests: ${kind} is not reachable on 127.0.0.1:${port} (set MIST_REQUIRE_SERVICES to fail instead)`);
  return false;
}

/** A prefix no other test uses, so tests running side by side do not hear each other. */
export function uniquePrefix(name = 't'): string {
  return `mist-test.${name}.${randomBytes(6).toString('hex')}`;
}

/** The `--cluster` URI of the shared service (or of `port`) with its own prefix. */
export function clusterUri(kind: BackplaneKind, prefix: string, port = SERVICE_PORTS[kind], query = ''): string {
  return `${kind}://127.0.0.1:${port}?prefix=${prefix}${query}`;
}

/**
 * Removes the history stream a cluster on `uri` made (a Redis key, a
 * JetStream stream), so that tests leave nothing in the shared services.
 */
export async function dropHistory(uri: string): Promise<void> {
  const url = new URL(uri);
  const name = `${url.searchParams.get('prefix')}.history`;
  const port = Number(url.port);
  if (!(await reachable(port))) return;
  if (url.protocol === 'redis:') {
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect().then(() => redis.del(name)).catch(() => {});
    redis.disconnect();
  } else {
    const nats = await connectNats({ servers: `127.0.0.1:${port}` }).catch(() => undefined);
    const manager = await nats?.jetstreamManager().catch(() => undefined);
    await manager?.streams.delete(name.replace(/\./g, '_')).catch(() => {});
    await nats?.close();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A private redis-server or nats-server on its own port, that a test stops and starts. Killed at teardown. */
export class ServiceProcess {
  private child: ChildProcess | undefined;

  private constructor(
    readonly kind: BackplaneKind,
    readonly port: number,
    /** Where nats-server keeps JetStream's files, across a stop and a resume. */
    private readonly store: string,
  ) {}

  static async start(t: ExecutionContext, kind: BackplaneKind): Promise<ServiceProcess> {
    const service = new ServiceProcess(kind, await freePort(), await tempFolder(t));
    t.teardown(() => service.stop());
    await service.resume();
    return service;
  }

  /** (Re)starts the server on the same port and waits until it accepts connections. */
  async resume(): Promise<void> {
    const port = String(this.port);
    this.child =
      this.kind === 'redis'
        ? spawn('redis-server', ['--port', port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
        : spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', port, '-js', '-sd', this.store], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await reachable(this.port, 200))) {
      if (Date.now() > deadline) throw new Error(`${this.kind} server did not start on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Kills the server (SIGKILL: an abrupt loss, as a crash or a network cut would be) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

/** A raw client subscribed to one channel, counting the payloads that cross it. Closed at teardown. */
export class ChannelTap {
  readonly payloads: string[] = [];

  private constructor(private readonly closer: () => Promise<unknown>) {}

  static async open(t: ExecutionContext, kind: BackplaneKind, channel: string, port = SERVICE_PORTS[kind]): Promise<ChannelTap> {
    let tap: ChannelTap;
    if (kind === 'redis') {
      const redis = new Redis({ host: '127.0.0.1', port });
      tap = new ChannelTap(() => redis.quit());
      redis.on('message', (_channel: string, message: string) => tap.payloads.push(message));
      await redis.subscribe(channel);
    } else {
      const nats: NatsConnection = await connectNats({ servers: `127.0.0.1:${port}` });
      tap = new ChannelTap(() => nats.close());
      nats.subscribe(channel, { callback: (err, msg) => !err && tap.payloads.push(msg.string()) });
      await nats.flush();
    }
    t.teardown(() => tap.closer());
    return tap;
  }

  get count(): number {
    return this.payloads.length;
  }
}
