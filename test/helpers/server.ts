/**
 * Test helpers: a real server on 127.0.0.1 port 0, and line-oriented TCP
 * clients. Everything a test opens is closed by `t.teardown`.
 */
import { Writable } from 'node:stream';
import { connect, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import type { ConfigFile } from '../../host/config-schema.ts';
import { buildConfig } from '../../host/config.ts';
import { createLogger } from '../../core/logger.ts';
import type { Frame, Message } from '../../core/protocol.ts';
import type { Sink } from '../../core/session.ts';
import type { MistPlugin } from '../../host/api.ts';
import { MistServer } from '../../host/server.ts';
import { builtinPlugins } from '../../plugins/preset.ts';
import { Wakeup, WAIT_MS } from './wakeup.ts';

/** Log lines a test server wrote, parsed. */
export type LogLines = Array<Record<string, unknown>>;

/** A stream for a logger that parses each JSON line it is given into `logs`. */
export function logCapture(logs: LogLines): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
}

/**
 * A wrong token's answer waits `authFailureDelayMs` (500 ms by default): a
 * test that tries many waits that long for each. Tests of the delay itself
 * set it; the rest need only that it is applied.
 */
const TEST_AUTH_FAILURE_DELAY_MS = 20;

/** Starts a server on a free TCP port (unless `config` says otherwise), with `plugins` after the built-in ones; closed at teardown. */
export async function startTestServer(
  t: ExecutionContext,
  config: ConfigFile = {},
  plugins: readonly MistPlugin[] = [],
): Promise<{ server: MistServer; logs: LogLines }> {
  const logs: LogLines = [];
  const limits = { authFailureDelayMs: TEST_AUTH_FAILURE_DELAY_MS, ...config.limits };
  const full = buildConfig({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'DEBUG', ...config, limits });
  const server = new MistServer(full, { logger: createLogger(full.logLevel, logCapture(logs)), plugins: [...builtinPlugins, ...plugins] });
  t.teardown(() => server.close());
  await server.start();
  return { server, logs };
}

/** A TCP client that reads newline-delimited JSON replies. */
export class LineClient {
  private buffer = '';
  private readonly lines: string[] = [];
  private readonly wakeup = new Wakeup();
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let at: number;
      while ((at = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, at));
        this.buffer = this.buffer.slice(at + 1);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects to a `tcp://host:port` URL; the socket is destroyed at teardown. */
  static async connect(t: ExecutionContext, url: string): Promise<LineClient> {
    const { hostname, port } = new URL(url);
    // `[::1]` comes bracketed from URL; net wants it bare.
    const socket = connect(Number(port), hostname.replace(/^\[(.*)\]$/, '$1'));
    t.teardown(() => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new LineClient(socket);
  }

  /** Writes raw text or bytes, unframed. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one message as a JSON line. */
  send(message: unknown): void {
    this.socket.write(JSON.stringify(message) + '\n');
  }

  /** Sends a message and returns the next line received, parsed. */
  async request(message: unknown): Promise<Message> {
    this.send(message);
    return this.next();
  }

  /** The next line received, parsed; rejects after `timeoutMs` or if the connection closes first. */
  async next(timeoutMs = WAIT_MS): Promise<Message> {
    return JSON.parse(await this.nextLine(timeoutMs)) as Message;
  }

  async nextLine(timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
    return this.lines.shift()!;
  }

  /** Lines received so far and not yet read. */
  get pending(): number {
    return this.lines.length;
  }

  /** Resolves once the server has closed the connection (rejects after `timeoutMs`). */
  async waitClosed(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  /** Sends `ping` and waits for its reply: everything sent before it has been handled. */
  async sync(): Promise<void> {
    const reply = await this.request({ command: 'ping' });
    if (reply.command !== 'ping') throw new Error(`expected the ping reply, got ${JSON.stringify(reply)}`);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    this.wakeup.wake();
  }
}

/**
 * A delivered message without its history id (`"id"`), for tests about what
 * was delivered rather than its id (test/history.*.test.ts check ids).
 */
export function withoutId<T extends { id?: unknown }>(message: T): Omit<T, 'id'> {
  const { id, ...rest } = message;
  return rest;
}

/** A delivered line without its history id, as {@link withoutId}. */
export function lineWithoutId(line: string): string {
  return line.replace(/,"id":"[^"]*"}$/, '}');
}

/** Polls `condition` until true; fails after `timeoutMs`. For states with no event to await. */
export async function eventually(condition: () => boolean, timeoutMs = WAIT_MS, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A sink that records what a session writes, for tests that open sessions by hand. */
export function recordingSink(): { sink: Sink; written: Frame[] } {
  const written: Frame[] = [];
  const sink: Sink = {
    write: (frame) => void written.push(frame),
    bufferedBytes: 0,
    end() {},
    destroy() {},
    pause() {},
    resume() {},
    whenDrained: (callback) => queueMicrotask(callback),
  };
  return { sink, written };
}
