/**
 * Isolation: what one abusive client costs everybody else. Each attack runs
 * against a freshly started mist (a child process) while a *probe* holds the
 * well-behaved clients whose experience the targets are about:
 *
 * - a bystander that pings every 20 ms and times each round trip (a ping
 *   unanswered for 5 s counts as a 5 s sample and the run moves on);
 * - a subscriber fed by a separate polite publisher (50 numbered messages a
 *   second through the whole attack), which counts what is lost or reordered;
 * - a sampler of the server's resident memory and CPU time (/proc), every 100 ms;
 * - for the guessing attack, a client that authenticates with a good token
 *   twice a second (TCP auth, and HTTP POST /publish), timing each.
 *
 * The probe is a child process of its own (this file, run with
 * {@link PROBE_FLAG}): the attacker's load lives in this process's event
 * loop, and the bystander's numbers must measure the server, not the bench.
 * On a 2-core machine the attacker also competes with the server for CPU
 * (as do other jobs on a shared machine); so, where allowed, the server runs
 * at nice -5 and the probe at -10, ahead of the attacker (nice 0): what the
 * figures show is what the server does with the attack, not the share of
 * the cores left to it. (Linux nice values are per thread: this sets their
 * main threads', the event loops.) The probe also records how late its own
 * timer runs, so that a machine too busy to trust shows in the figures.
 *
 * Every wait has a timeout and every attack a time limit: a server that
 * stalls or bloats shows as FAIL figures, never as a hung bench. Sockets and
 * child processes are torn down after each attack whatever happened. All
 * traffic goes to 127.0.0.1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, fdLimits, fmt, freePort, rssBytes, sleep, startMist, syscalls, table, verdict, type ServerUnderTest } from './lib.ts';

const HOST = '127.0.0.1';
const PROBE_FLAG = '--isolation-probe';

/** The bystander's targets, under every attack. */
const PING_P99_MS = 50;
const PING_MAX_MS = 250;
const PING_EVERY_MS = 20;
/** A probe whose own timer ran later than this in a window gets a note: its figures there are partly the machine's. */
const PROBE_LAG_NOTE_MS = 50;
/** A ping (or a good-token check) unanswered this long counts as this long. */
const UNANSWERED_MS = 5000;
/** The polite publisher: one numbered message every 20 ms. */
const FEED_EVERY_MS = 20;
const FEED_SUBSCRIPTION = ['isolation-feed'];
const FEED_TAGS = ['isolation-feed', 'probe'];
/**
 * How long the subscriber waits for the last messages once the publisher
 * stops: a server still busy with the attack delivers late, which is not
 * loss. What has not come by then counts as lost.
 */
const FEED_DRAIN_MS = 15_000;
const GOOD_CHECK_EVERY_MS = 500;
const RSS_EVERY_MS = 100;

/** 1. Crafted subscriptions (sizes from the issue). */
const CRAFT_CONNECTIONS = 20;
const CRAFT_PAIRS = 5000;
const CRAFT_MESSAGE_TAGS = 64;
const CRAFT_SUBSET = 24;
/** Throwaway subscriptions {X, unique} and {Y, unique} each, so X and Y outnumber every tag of M from the start. */
const CRAFT_FILLER = 3000;
const CRAFT_BATCH = 60;
const CRAFT_ROUNDS = 4;
/** A batch not done by then ends the publishing (the rest of the attack would only repeat it)… */
const CRAFT_BATCH_LIMIT_MS = 20_000;
/** …and no batch starts after this much publishing. */
const CRAFT_PUBLISHING_MS = 25_000;
/** 2. Subscribe flood. */
const FLOOD_CONNECTIONS = 10;
const FLOOD_SUBSCRIBES = 10_000;
/** 3. Teardown: subscriptions per connection (the planned per-connection cap), and the variants' connection counts. */
const TEARDOWN_SUBSCRIPTIONS = 10_000;
const TEARDOWN_VARIANTS = [1, 8];
/** 4. Unfinished lines: connections, and each one's line (1 MB, under the 1 MiB line limit so that today's limit does not cut it). */
const UNFINISHED_CONNECTIONS = 2000;
const UNFINISHED_LINE_BYTES = 1_000_000;
const UNFINISHED_IDLE_MS = 20_000;
const UNFINISHED_MEMORY_MB = 600;
/** 5. Bytewise line: at most this many bytes, for at most this long, at this pace (slow enough that the server reads about a byte at a time). */
const BYTEWISE_BYTES = 1_000_000;
const BYTEWISE_MAX_MS = 25_000;
const BYTEWISE_RATE = 20_000;
/** Blank lines a byte per segment first, for this long (see bytewise()). */
const BYTEWISE_WARMUP_MS = 5000;
const BYTEWISE_MB_PER_MB = 8;
/** The server's young generation during the bytewise attack, and its history (see its description). */
const BYTEWISE_SEMI_SPACE_MB = 16;
const BYTEWISE_HISTORY = 100;
/** 6. Reconnect-and-guess: each transport this long, with this many connections at a time. */
const GUESS_MS = 10_000;
const GUESS_PARALLEL = 64;
const GUESSES_PER_SECOND = 20;
const ADMIN_TOKEN = 'ADMIN';
const GOOD_TOKEN = 'good';

/** Memory figures are in decimal MB, like the 1 MB (10^6-byte) lines sent. */
const MB = 1e6;

/** Scheduling priorities (see the top of this file). */
const SERVER_NICE = -5;
const PROBE_NICE = -10;

/** Sets a process's nice value; false where that is not allowed (no CAP_SYS_NICE). */
function renice(pid: number, nice: number): boolean {
  try {
    setPriority(pid, nice);
    return true;
  } catch {
    return false;
  }
}

/** Wall-clock milliseconds, comparable between this process and the probe's. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Waits for `promise` at most `ms`: true if it settled in time, false otherwise (it is left to settle on its own). */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

/** Calls `onLine` with each newline-terminated line the socket reads, without the newline. */
function readLines(socket: Socket, onLine: (line: string) => void): void {
  let carry = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const lines = (carry + chunk).split('\n');
    carry = lines.pop()!;
    for (const line of lines) if (line !== '') onLine(line);
  });
}

function parse(line: string): { command?: string; data?: unknown; error?: string } {
  try {
    return JSON.parse(line) as { command?: string; data?: unknown; error?: string };
  } catch {
    return { error: `unparsable reply: ${line.slice(0, 80)}` };
  }
}

function line(message: Record<string, unknown>): string {
  return JSON.stringify(message) + '\n';
}

const PING_LINE = line({ command: 'ping' });

/** A raw HTTP/1.1 `POST /publish` with `token` in X-AUTH-TOKEN. */
function publishRequest(token: string, tags: string[]): string {
  const body = JSON.stringify({ tags, data: 'x' });
  return (
    `POST /publish HTTP/1.1\r\nHost: ${HOST}\r\nX-AUTH-TOKEN: ${token}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** The nearest-rank quantile `q` of ascending `sorted`. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A small seeded generator (mulberry32), so every run crafts the same tag sets. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `k` distinct items of `items`, in random order. */
function sample<T>(items: readonly T[], k: number, rand: () => number): T[] {
  const copy = [...items];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, k);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ===========================================================================
// The probe: a child process holding the well-behaved clients.
// ===========================================================================

interface ProbeConfig {
  port: number;
  /** The server's HTTP listener, for the good-token checks over HTTP. */
  httpPort?: number;
  /** The server's pid, for its resident memory. */
  pid: number;
  /** A token the probe's own connections authenticate with first (a server with an authenticator). */
  token?: string;
  /** A registered token to authenticate with every {@link GOOD_CHECK_EVERY_MS}, timed. */
  goodToken?: string;
}

interface FeedResult {
  sent: number;
  received: number;
  lost: number;
  reordered: number;
  /** The server closed the subscriber's or the publisher's connection. */
  closed: string[];
  /** Error replies to the publisher or subscriber. */
  errors: number;
  firstError?: string;
}

interface Checks {
  n: number;
  failed: number;
  p50: number;
  max: number;
  firstFailure?: string;
}

interface WindowReport {
  pings: number;
  p50: number;
  p99: number;
  max: number;
  /** Pings that went unanswered for 5 s (or could not be sent: the connection was gone). */
  unanswered: number;
  /** The most the probe's own 20 ms timer ran late in the window (ms): its own delay, not the server's. */
  probeLagMax: number;
  /** Times the server closed the bystander's connection. */
  bystanderCloses: number;
  /** The server's resident memory at the window's start, and the most it reached in it (bytes). */
  rssBase: number;
  rssPeak: number;
  /** The server's CPU time over the window, as a share of one core. */
  serverCpu: number;
  serverGone: boolean;
  good: { tcp: Checks; http: Checks };
}

/** Opens a probe connection, authenticating first when the server wants it (the reply is the first line). */
function probeConnection(config: ProbeConfig): Socket {
  const socket = connect({ port: config.port, host: HOST, noDelay: true });
  socket.on('error', () => {});
  if (config.token) socket.write(line({ command: 'auth', data: config.token }));
  return socket;
}

/** Pings every 20 ms on one connection and keeps each round trip with the time it was sent. */
class Bystander {
  readonly samples: Array<{ sent: number; rtt: number }> = [];
  /**
   * How late each 20 ms tick ran: the probe's own delay. If it is large, the
   * probe was starved (a busy machine), and its figures say less about the server.
   */
  readonly lag: Array<{ t: number; ms: number }> = [];
  private lastTick = 0;
  closes = 0;
  /** Pings sent on the current connection, oldest first; `done` once counted as unanswered. */
  private pending: Array<{ sent: number; done: boolean }> = [];
  private socket: Socket | undefined;
  private connected = false;
  private authReplyDue = false;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;
  readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly config: ProbeConfig) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.open();
    this.timer = setInterval(() => this.tick(), PING_EVERY_MS);
  }

  /** Whether a ping sent at or before `t` still awaits its answer (or its 5 s). */
  awaiting(t: number): boolean {
    return this.pending.some((p) => !p.done && p.sent <= t);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.socket?.destroy();
  }

  private open(): void {
    const socket = probeConnection(this.config);
    this.socket = socket;
    this.authReplyDue = this.config.token !== undefined;
    socket.once('connect', () => (this.connected = true));
    readLines(socket, (text) => {
      if (this.authReplyDue) {
        this.authReplyDue = false;
        return;
      }
      // Replies come in order: this one answers the oldest ping still on this connection.
      const ping = this.pending.shift();
      if (!ping || ping.done) return;
      this.samples.push({ sent: ping.sent, rtt: now() - ping.sent });
      if (!text.includes('"pong"')) process.stderr.write(`isolation probe: unexpected reply to ping: ${text.slice(0, 120)}\n`);
      this.markReady();
    });
    socket.once('close', () => {
      this.connected = false;
      if (this.stopped) return;
      // Gone with pings unanswered: each is a 5 s sample. Connect again.
      this.closes++;
      for (const p of this.pending) if (!p.done) this.samples.push({ sent: p.sent, rtt: UNANSWERED_MS });
      this.pending = [];
      setTimeout(() => this.stopped || this.open(), 100);
    });
  }

  private tick(): void {
    const t = now();
    if (this.lastTick) this.lag.push({ t, ms: Math.max(0, t - this.lastTick - PING_EVERY_MS) });
    this.lastTick = t;
    // A ping unanswered for 5 s counts as 5 s; its reply, if it ever comes, is matched and dropped.
    for (const p of this.pending) {
      if (!p.done && t - p.sent >= UNANSWERED_MS) {
        p.done = true;
        this.samples.push({ sent: p.sent, rtt: UNANSWERED_MS });
      }
    }
    if (this.connected) {
      this.pending.push({ sent: t, done: false });
      this.socket!.write(PING_LINE);
    } else {
      // No connection (the server closed it and a new one is under way): an unanswered ping.
      this.samples.push({ sent: t, rtt: UNANSWERED_MS });
    }
  }
}

/** The subscriber and its polite publisher: numbered messages, checked for loss and order. */
class Feed {
  private sent = 0;
  private readonly seen = new Set<number>();
  private last = 0;
  private reordered = 0;
  private errors = 0;
  private firstError: string | undefined;
  private readonly closed: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  private constructor(
    private readonly subscriber: Socket,
    private readonly publisher: Socket,
  ) {}

  static async open(config: ProbeConfig): Promise<Feed> {
    const subscriber = probeConnection(config);
    const publisher = probeConnection(config);
    const feed = new Feed(subscriber, publisher);
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    readLines(subscriber, (text) => {
      const message = parse(text);
      if (message.command === 'publish' && typeof message.data === 'number') feed.received(message.data);
      else if (message.command === 'subscribe' && message.error === undefined) subscribed();
      else if (message.error !== undefined) feed.error(`subscriber: ${text}`);
    });
    readLines(publisher, (text) => {
      if (parse(text).error !== undefined) feed.error(`publisher: ${text}`);
    });
    subscriber.once('close', () => feed.stopping || feed.closed.push('subscriber'));
    publisher.once('close', () => feed.stopping || feed.closed.push('publisher'));
    subscriber.write(line({ command: 'subscribe', tags: FEED_SUBSCRIPTION }));
    if (!(await within(ready, 10_000))) throw new Error('the probe subscriber got no subscribe reply in 10 s');
    return feed;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.sent++;
      this.publisher.write(line({ command: 'publish', tags: FEED_TAGS, data: this.sent }));
    }, FEED_EVERY_MS);
  }

  /** Stops publishing, waits (at most {@link FEED_DRAIN_MS}) for the last messages, and counts. */
  async stop(): Promise<FeedResult> {
    clearInterval(this.timer);
    const deadline = Date.now() + FEED_DRAIN_MS;
    while (this.seen.size < this.sent && Date.now() < deadline && this.closed.length === 0) await sleep(20);
    const result = {
      sent: this.sent,
      received: this.seen.size,
      lost: this.sent - this.seen.size,
      reordered: this.reordered,
      closed: [...this.closed],
      errors: this.errors,
      firstError: this.firstError,
    };
    this.stopping = true;
    this.subscriber.destroy();
    this.publisher.destroy();
    return result;
  }

  private received(seq: number): void {
    // Out of order (or a duplicate): a number at or below one already seen.
    if (seq <= this.last) this.reordered++;
    else this.last = seq;
    this.seen.add(seq);
  }

  private error(text: string): void {
    this.errors++;
    this.firstError ??= text.slice(0, 200);
  }
}

/**
 * Where the good-token user connects from: another address than the
 * attacker's (127.0.0.1), as a real user would. From the attacker's own
 * address a right token waits for a free slot like a guess, by design
 * (docs/auth.md). Every 127.x address is this host on Linux.
 */
const USER_ADDRESS = '127.0.0.2';

/** A good token authenticating twice a second, on a fresh connection each time, over TCP and (when given) HTTP. */
class GoodTokenChecks {
  readonly samples: Array<{ sent: number; ms: number; ok: boolean; transport: 'tcp' | 'http'; detail?: string }> = [];
  private readonly pending = new Set<number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly config: ProbeConfig & { goodToken: string }) {
    this.timers.push(setInterval(() => this.check('tcp'), GOOD_CHECK_EVERY_MS));
    if (config.httpPort) {
      const http = setTimeout(() => this.timers.push(setInterval(() => this.check('http'), GOOD_CHECK_EVERY_MS)), GOOD_CHECK_EVERY_MS / 2);
      this.timers.push(http);
    }
  }

  awaiting(t: number): boolean {
    return [...this.pending].some((sent) => sent <= t);
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const socket of this.sockets) socket.destroy();
  }

  private check(transport: 'tcp' | 'http'): void {
    const sent = now();
    const { goodToken, port, httpPort } = this.config;
    const socket = connect({ port: transport === 'tcp' ? port : httpPort!, host: HOST, localAddress: USER_ADDRESS, noDelay: true });
    this.sockets.add(socket);
    this.pending.add(sent);
    let settled = false;
    const settle = (ok: boolean, detail?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.pending.delete(sent);
      this.sockets.delete(socket);
      this.samples.push({ sent, ms: ok ? now() - sent : Math.min(now() - sent, UNANSWERED_MS), ok, transport, detail });
      socket.destroy();
    };
    const timer = setTimeout(() => settle(false, 'no answer in 5 s'), UNANSWERED_MS);
    socket.on('error', (err) => settle(false, err.message));
    socket.once('close', () => settle(false, 'closed without an answer'));
    socket.once('connect', () => socket.write(transport === 'tcp' ? line({ command: 'auth', data: goodToken }) : publishRequest(goodToken, ['a'])));
    readLines(socket, (text) => {
      if (transport === 'tcp') settle(parse(text).data === 'success', text.slice(0, 120));
      else settle(text.startsWith('HTTP/1.1 204'), text.slice(0, 120));
    });
  }
}

/** The server's resident memory and CPU time every 100 ms. */
class ServerSampler {
  readonly samples: Array<{ t: number; rss: number; cpu: number }> = [];
  gone = false;
  private readonly timer: NodeJS.Timeout;

  constructor(pid: number) {
    const take = (): void => {
      try {
        this.samples.push({ t: now(), rss: rssBytes(pid), cpu: cpuSeconds(pid) });
      } catch {
        this.gone = true;
      }
    };
    take();
    this.timer = setInterval(take, RSS_EVERY_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function summarizeChecks(samples: GoodTokenChecks['samples']): Checks {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const failures = samples.filter((s) => !s.ok);
  return { n: samples.length, failed: failures.length, p50: quantile(ms, 0.5), max: ms.at(-1) ?? NaN, firstFailure: failures[0]?.detail };
}

/** What the probe process does: runs its clients and answers the bench's requests over IPC. */
function probeProcess(): void {
  let config: ProbeConfig;
  let bystander: Bystander;
  let feed: Feed;
  let good: GoodTokenChecks | undefined;
  let server: ServerSampler;
  // The bench went away (finished, or died): so does the probe.
  process.on('disconnect', () => process.exit(0));

  async function report(from: number, to: number): Promise<WindowReport> {
    // Pings sent in the window and still in flight get their answer or their 5 s first.
    const deadline = Date.now() + UNANSWERED_MS + 1000;
    while ((bystander.awaiting(to) || good?.awaiting(to)) && Date.now() < deadline) await sleep(20);
    const rtts = bystander.samples.filter((s) => s.sent >= from && s.sent <= to).map((s) => s.rtt).sort((a, b) => a - b);
    const inWindow = server.samples.filter((s) => s.t >= from && s.t <= to);
    const before = server.samples.filter((s) => s.t <= from).at(-1) ?? server.samples[0]!;
    const last = inWindow.at(-1) ?? before;
    const checks = good?.samples.filter((s) => s.sent >= from && s.sent <= to) ?? [];
    return {
      pings: rtts.length,
      p50: quantile(rtts, 0.5),
      p99: quantile(rtts, 0.99),
      max: rtts.at(-1) ?? NaN,
      unanswered: rtts.filter((rtt) => rtt >= UNANSWERED_MS).length,
      probeLagMax: Math.max(0, ...bystander.lag.filter((s) => s.t >= from && s.t <= to).map((s) => s.ms)),
      bystanderCloses: bystander.closes,
      rssBase: before.rss,
      rssPeak: Math.max(before.rss, ...inWindow.map((s) => s.rss)),
      serverCpu: last.t > before.t ? (last.cpu - before.cpu) / ((last.t - before.t) / 1000) : NaN,
      serverGone: server.gone,
      good: { tcp: summarizeChecks(checks.filter((c) => c.transport === 'tcp')), http: summarizeChecks(checks.filter((c) => c.transport === 'http')) },
    };
  }

  process.on('message', (request: { id: number; type: string; config?: ProbeConfig; from?: number; to?: number }) => {
    const answer = async (): Promise<unknown> => {
      switch (request.type) {
        case 'start': {
          config = request.config!;
          server = new ServerSampler(config.pid);
          bystander = new Bystander(config);
          feed = await Feed.open(config);
          if (!(await within(bystander.ready, 10_000))) throw new Error('the bystander got no pong in 10 s');
          if (config.goodToken) good = new GoodTokenChecks({ ...config, goodToken: config.goodToken });
          return {};
        }
        case 'feed-start':
          feed.start();
          return {};
        case 'feed-stop':
          return feed.stop();
        case 'report':
          return report(request.from!, request.to!);
        case 'stop':
          bystander?.stop();
          good?.stop();
          server?.stop();
          return {};
        default:
          throw new Error(`unknown probe request ${request.type}`);
      }
    };
    answer().then(
      (reply) => process.send!({ id: request.id, reply }),
      (err: unknown) => process.send!({ id: request.id, error: String(err) }),
    );
  });
}

/** The bench's handle on a probe process. */
class Probe {
  private readonly waiting = new Map<number, { resolve: (reply: any) => void; reject: (err: Error) => void }>();
  private ids = 0;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: { id: number; reply?: unknown; error?: string }) => {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`probe: ${message.error}`));
      else waiter?.resolve(message.reply);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`probe exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  static async start(config: ProbeConfig): Promise<Probe> {
    // The same tsx loader as this process (process.execArgv), this file as the entry point.
    const child = fork(fileURLToPath(import.meta.url), [PROBE_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // Its timing should show the server's delays, not its share of a CPU the attacker also wants.
    renice(child.pid!, PROBE_NICE);
    const probe = new Probe(child);
    try {
      await probe.ask('start', { config }, 20_000);
    } catch (err) {
      probe.close();
      throw err;
    }
    return probe;
  }

  feedStart(): Promise<unknown> {
    return this.ask('feed-start', {}, 5000);
  }

  feedStop(): Promise<FeedResult> {
    return this.ask('feed-stop', {}, FEED_DRAIN_MS + 5000);
  }

  report(from: number, to: number): Promise<WindowReport> {
    return this.ask('report', { from, to }, UNANSWERED_MS + 5000);
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private ask<T>(type: string, extra: Record<string, unknown>, timeoutMs: number): Promise<T> {
    const id = ++this.ids;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`probe: no answer to "${type}" in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      if (!this.child.connected) return this.waiting.get(id)!.reject(new Error('probe is gone'));
      this.child.send({ id, type, ...extra });
    });
  }
}

// ===========================================================================
// The attacker's side: connections, and one attack's run.
// ===========================================================================

/** An attacker's connection: counts reply lines (and error replies) and notes when the server closed it. */
class Client {
  lines = 0;
  errors = 0;
  firstError: string | undefined;
  /** When the connection closed (`now()` clock), if it has. */
  closedAt: number | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    readLines(socket, (text) => {
      this.lines++;
      if (text.includes('"error"')) {
        this.errors++;
        this.firstError ??= text.slice(0, 160);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      this.closedAt = now();
      this.wake();
    });
  }

  /** Resolves true once `n` reply lines have come in all, false if the connection closed or `ms` passed first. */
  until(n: number, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.lines < n && this.closedAt === undefined) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(this.lines >= n);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(false);
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** A row of an attack's table: one window of time and what the probe saw in it. */
interface Row {
  label: string;
  /** Whether the bystander's targets apply to this window (a set-up phase is shown, not judged). */
  judged: boolean;
  from: number;
  to: number;
  report: WindowReport;
  notes: string;
}

/** Everything one attack holds, torn down by {@link runAttack} whatever happens. */
class Attack {
  readonly rows: Row[] = [];
  /** Attack-specific verdicts, printed after the table. */
  readonly verdicts: Array<{ target: string; pass: boolean; detail: string }> = [];
  readonly notes: string[] = [];
  /** Figures for the summary table. */
  readonly summary: Record<string, string> = {};
  private readonly sockets = new Set<Socket>();
  private over = false;

  constructor(
    readonly server: ServerUnderTest,
    readonly probe: Probe,
    readonly httpPort: number | undefined,
  ) {}

  /** A raw socket to the server, destroyed with the attack. */
  socket(port = this.server.port): Socket {
    // An attack cut at its time limit may still be running: it opens nothing more.
    if (this.over) throw new Error('the attack is over');
    const socket = connect({ port, host: HOST, noDelay: true });
    socket.on('error', () => {});
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  }

  /** A connected {@link Client}; throws if it cannot connect within 5 s. */
  async client(): Promise<Client> {
    const client = new Client(this.socket());
    const connected = new Promise<void>((resolve, reject) => {
      client.socket.once('connect', resolve);
      client.socket.once('close', () => reject(new Error('closed')));
    });
    connected.catch(() => {});
    if (!(await within(connected, 5000)) || client.closedAt !== undefined) {
      client.socket.destroy();
      throw new Error('could not connect to the server within 5 s');
    }
    return client;
  }

  /** Asks the probe about [from, to] and adds the row. */
  async measure(label: string, from: number, to: number, judged: boolean, notes = ''): Promise<WindowReport> {
    const report = await this.probe.report(from, to);
    this.rows.push({ label, judged, from, to, report, notes });
    return report;
  }

  verdict(target: string, pass: boolean, detail: string): void {
    this.verdicts.push({ target, pass, detail });
  }

  destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Ends the attack: every socket is destroyed and no new one opens. */
  close(): void {
    this.over = true;
    this.destroySockets();
  }
}

interface AttackSpec {
  name: string;
  title: string;
  /** Printed under the title: what the attack does, at what size. */
  describe: string[];
  /** Time limit for the attack's body; past it, its sockets are destroyed and the run moves on. */
  limitMs: number;
  /** The server's configuration beyond the defaults. */
  mist?: { config?: Record<string, unknown>; http?: boolean; nodeArgs?: string[] };
  /** Runs on the fresh server before the probe starts (e.g. registers a token); returns probe settings. */
  prepare?: (server: ServerUnderTest, httpPort: number | undefined) => Promise<Partial<ProbeConfig>>;
  body: (attack: Attack) => Promise<void>;
}

interface AttackResult {
  spec: AttackSpec;
  rows: Row[];
  feed: FeedResult | undefined;
  summary: Record<string, string>;
  seconds: number;
}

/**
 * Runs one attack on a fresh server with a fresh probe: the feed runs from
 * before the attack to after it; then the table and the verdicts. The
 * server, the probe and every socket are gone when it returns.
 */
async function runAttack(spec: AttackSpec): Promise<AttackResult> {
  const started = performance.now();
  console.log(`\n### ${spec.title}\n`);
  for (const text of spec.describe) console.log(`  ${text}`);
  console.log('');
  const httpPort = spec.mist?.http ? await freePort() : undefined;
  let server: ServerUnderTest | undefined;
  let probe: Probe | undefined;
  let attack: Attack | undefined;
  let feed: FeedResult | undefined;
  let failure: string | undefined;
  try {
    server = await startMist({
      name: `mist (${spec.name})`,
      config: spec.mist?.config,
      nodeArgs: spec.mist?.nodeArgs,
      extraListeners: httpPort ? [`http://${HOST}:${httpPort}`] : [],
    });
    const favoured = renice(server.pid, SERVER_NICE);
    const load = loadavg()[0]!;
    console.log(`  server at nice ${favoured ? SERVER_NICE : '0 (renice not allowed)'}; machine load average before the attack: ${fmt(load, 2)} on ${cpus().length} CPUs\n`);
    const extra = (await spec.prepare?.(server, httpPort)) ?? {};
    probe = await Probe.start({ port: server.port, httpPort, pid: server.pid, ...extra });
    attack = new Attack(server, probe, httpPort);
    await sleep(500);
    await probe.feedStart();
    const body = spec.body(attack);
    body.catch((err: unknown) => (failure = `failed: ${(err as Error).message}`));
    if (!(await within(body, spec.limitMs))) failure = `did not finish within its ${spec.limitMs / 1000} s limit; cut short`;
    // The attacker's connections go before the feed is counted: the feed's tail must get through.
    attack.close();
    feed = await probe.feedStop().catch((err: unknown) => {
      failure ??= `feed: ${(err as Error).message}`;
      return undefined;
    });
  } catch (err) {
    failure = `failed: ${(err as Error).message}`;
  } finally {
    attack?.close();
    probe?.close();
    await server?.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  report(spec, attack, feed, failure, seconds);
  return { spec, rows: attack?.rows ?? [], feed, summary: attack?.summary ?? {}, seconds };
}

const ms = (value: number): string => (Number.isNaN(value) ? '-' : fmt(value));
const mb = (bytes: number): string => `${fmt(bytes / MB)} MB`;

/** Prints an attack's table, its feed, and its verdicts. */
function report(spec: AttackSpec, attack: Attack | undefined, feed: FeedResult | undefined, failure: string | undefined, seconds: number): void {
  const rows = attack?.rows ?? [];
  table(
    ['window', 'judged', 's', 'pings', 'p50 ms', 'p99 ms', 'max ms', '≥5 s', 'probe lag max ms', 'server CPU', 'RSS before', 'RSS peak − before', 'notes'],
    rows.map((row) => [
      row.label,
      row.judged ? 'yes' : 'no (set-up)',
      fmt((row.to - row.from) / 1000),
      row.report.pings,
      ms(row.report.p50),
      ms(row.report.p99),
      ms(row.report.max),
      row.report.unanswered,
      ms(row.report.probeLagMax),
      Number.isNaN(row.report.serverCpu) ? '-' : `${Math.round(row.report.serverCpu * 100)}%`,
      mb(row.report.rssBase),
      mb(row.report.rssPeak - row.report.rssBase),
      row.notes,
    ]),
  );
  const closes = rows.at(-1)?.report.bystanderCloses ?? 0;
  const gone = rows.some((row) => row.report.serverGone);
  console.log('');
  if (feed) {
    const closed = feed.closed.length ? `; the server closed the ${feed.closed.join(' and ')}` : '';
    const errors = feed.errors ? `; ${feed.errors} error replies (first: ${feed.firstError})` : '';
    console.log(`  subscriber, fed ${1000 / FEED_EVERY_MS}/s through the attack: sent ${feed.sent}, received ${feed.received}, lost ${feed.lost}, reordered ${feed.reordered}${closed}${errors}`);
  }
  if (closes) console.log(`  the server closed the bystander's connection ${closes} time(s)`);
  for (const row of rows) {
    if (row.report.probeLagMax > PROBE_LAG_NOTE_MS) {
      console.log(`  in "${row.label}" the probe's own timer ran up to ${ms(row.report.probeLagMax)} ms late: the machine was busy, and the bystander's figures there include some of that`);
    }
  }
  if (gone) console.log('  the server process was gone before the end of the attack');
  for (const note of attack?.notes ?? []) console.log(`  ${note}`);
  if (failure) console.log(`  the attack ${failure}`);
  console.log(`  took ${fmt(seconds)} s\n`);

  const judged = rows.filter((row) => row.judged);
  if (judged.length === 0) verdict(`isolation ${spec.name}: bystander ping p99 ≤ ${PING_P99_MS} ms, max ≤ ${PING_MAX_MS} ms`, false, `nothing measured (${failure ?? 'no window'})`);
  for (const row of judged) {
    const r = row.report;
    verdict(
      `isolation ${spec.name}${judged.length > 1 ? ` (${row.label})` : ''}: bystander ping p99 ≤ ${PING_P99_MS} ms, max ≤ ${PING_MAX_MS} ms`,
      r.pings > 0 && r.p99 <= PING_P99_MS && r.max <= PING_MAX_MS,
      `p50 ${ms(r.p50)} ms, p99 ${ms(r.p99)} ms, max ${ms(r.max)} ms over ${r.pings} pings (${r.unanswered} unanswered for 5 s; the probe's own lag up to ${ms(r.probeLagMax)} ms)`,
    );
  }
  verdict(
    `isolation ${spec.name}: subscriber loses and reorders nothing`,
    feed !== undefined && feed.sent > 0 && feed.lost === 0 && feed.reordered === 0 && feed.closed.length === 0,
    feed ? `sent ${feed.sent}, lost ${feed.lost}, reordered ${feed.reordered}${feed.closed.length ? `, ${feed.closed.join(' and ')} closed by the server` : ''}` : `not measured (${failure})`,
  );
  for (const v of attack?.verdicts ?? []) verdict(v.target, v.pass, v.detail);
  const own = OWN_TARGETS[spec.name];
  if (failure && own && attack?.verdicts.length === 0) verdict(`isolation ${spec.name}: ${own}`, false, `not measured: the attack ${failure}`);
}

/** Attacks with a target of their own, so that one cut short still reports it (as FAIL). */
const OWN_TARGETS: Record<string, string> = {
  'unfinished-lines': `memory growth ≤ ${UNFINISHED_MEMORY_MB} MB`,
  bytewise: `≤ ${BYTEWISE_MB_PER_MB} MB of memory per MB sent`,
  guess: `≤ ${GUESSES_PER_SECOND} answered wrong guesses per second per address`,
};

/** Subscribe lines for `sets`, one per set. */
function subscribes(sets: string[][]): string {
  let text = '';
  for (const tags of sets) text += `{"command":"subscribe","tags":${JSON.stringify(tags)}}\n`;
  return text;
}

/** Opens a client per text, each writes its text in one write; resolves with whether every reply came within `ms`. */
async function subscribeAll(attack: Attack, texts: string[], expected: number[], ms: number): Promise<{ clients: Client[]; ok: boolean; seconds: number }> {
  const clients = await Promise.all(texts.map(() => attack.client()));
  const started = performance.now();
  clients.forEach((client, i) => client.socket.write(texts[i]!));
  // Each wait is bounded by `ms` on its own.
  const ok = (await Promise.all(clients.map((client, i) => client.until(expected[i]!, ms)))).every(Boolean);
  return { clients, ok, seconds: (performance.now() - started) / 1000 };
}

const VOCABULARY = range(64).map((i) => `v${i}`);

// ===========================================================================
// The attacks.
// ===========================================================================

/**
 * 1. Crafted subscriptions. M is a 64-tag message; X and Y are tags M lacks,
 * made popular first with throwaway subscriptions {X, unique} and
 * {Y, unique}, so that a rarest-first matcher puts them last. Each crafted
 * pair is A+{X} and A+{Y} for a random 24-tag subset A of M: every node of
 * A's path is in M, and no sentinel can skip it (X for one branch, Y for
 * the other), so each publish of M walks every crafted path to its end.
 * Then M is published in batches of 60 in one write (with a ping after
 * them, whose answer says the batch is done), a few times.
 */
async function craftedSubscriptions(attack: Attack): Promise<void> {
  const rand = random(1);
  const message = range(CRAFT_MESSAGE_TAGS).map((i) => `m${i}`);
  const [x, y] = ['x-popular', 'y-popular'];

  const fillerSets = range(CRAFT_FILLER).flatMap((i) => [
    [x, `fx${i}`],
    [y, `fy${i}`],
  ]);
  const filler = await subscribeAll(attack, [subscribes(fillerSets)], [fillerSets.length], 20_000);
  if (!filler.ok) attack.notes.push(`the throwaway subscriptions were not all answered in 20 s (${filler.clients[0]!.lines} of ${fillerSets.length})`);

  const texts = range(CRAFT_CONNECTIONS).map(() => {
    const sets: string[][] = [];
    for (let pair = 0; pair < CRAFT_PAIRS; pair++) {
      const subset = sample(message, CRAFT_SUBSET, rand);
      sets.push([...subset, x], [...subset, y]);
    }
    return subscribes(sets);
  });
  const setupFrom = now();
  const crafted = await subscribeAll(attack, texts, texts.map(() => 2 * CRAFT_PAIRS), 40_000);
  const setupTo = now();
  const answered = crafted.clients.reduce((sum, client) => sum + client.lines, 0);
  await attack.measure(
    `set-up: ${CRAFT_CONNECTIONS} × ${2 * CRAFT_PAIRS} crafted subscribes`,
    setupFrom,
    setupTo,
    false,
    `${answered} of ${CRAFT_CONNECTIONS * 2 * CRAFT_PAIRS} answered in ${fmt(crafted.seconds)} s`,
  );
  await sleep(1000);

  const publisher = await attack.client();
  const publishM = `{"command":"publish","tags":${JSON.stringify(message)},"data":"m"}\n`;
  const from = now();
  // One publish alone first (the ping after it says when it is done): what each one costs.
  const t0 = performance.now();
  publisher.socket.write(publishM + PING_LINE);
  const single = await publisher.until(1, CRAFT_BATCH_LIMIT_MS);
  const singleMs = performance.now() - t0;
  const batchMs: number[] = [];
  let cut = !single;
  for (let round = 1; round <= CRAFT_ROUNDS && !cut && performance.now() - t0 < CRAFT_PUBLISHING_MS; round++) {
    await sleep(500);
    const start = performance.now();
    publisher.socket.write(publishM.repeat(CRAFT_BATCH) + PING_LINE);
    const done = await publisher.until(1 + round, CRAFT_BATCH_LIMIT_MS);
    batchMs.push(performance.now() - start);
    if (!done) {
      cut = true;
      attack.notes.push(`batch ${round} of ${CRAFT_BATCH} publishes was not done after ${CRAFT_BATCH_LIMIT_MS / 1000} s; no more batches sent`);
    }
  }
  const to = now();
  // A batch cut at its limit took at least that long.
  const perPublish = batchMs.map((t, i) => `${cut && i === batchMs.length - 1 ? '≥ ' : ''}${fmt(t / CRAFT_BATCH)}`).join(', ');
  await attack.measure(
    `1 + ${batchMs.length} × ${CRAFT_BATCH} publishes of M`,
    from,
    to,
    true,
    `one publish alone: ${single ? '' : '≥ '}${fmt(singleMs)} ms; ms per publish by batch: ${perPublish || '-'}`,
  );
  attack.summary.extra = `${single ? '' : '≥ '}${fmt(singleMs)} ms per publish of M`;
}

/** 2. Subscribe flood: 10 connections each write 10,000 subscribes (distinct 4-tag sets) in one write, at once. */
async function subscribeFlood(attack: Attack): Promise<void> {
  const rand = random(2);
  const texts = range(FLOOD_CONNECTIONS).map((c) => subscribes(range(FLOOD_SUBSCRIBES).map((i) => [`flood${c}-${i}`, ...sample(VOCABULARY, 3, rand)])));
  const from = now();
  const flood = await subscribeAll(attack, texts, texts.map(() => FLOOD_SUBSCRIBES), 40_000);
  const to = now();
  const answered = flood.clients.reduce((sum, client) => sum + client.lines, 0);
  await attack.measure(`${FLOOD_CONNECTIONS} × ${FLOOD_SUBSCRIBES} subscribes`, from, to, true, `${answered} answered in ${fmt(flood.seconds)} s`);
  attack.summary.extra = `${answered} subscribes answered in ${fmt(flood.seconds)} s`;
}

/**
 * 3. Teardown: connections holding 10,000 subscriptions each (distinct
 * 9-tag sets: a unique tag and 8 of a 64-tag vocabulary) close abruptly
 * (RST), first one alone, then several at once; the bystander is watched
 * from just before the close to 3 s after.
 */
async function teardown(attack: Attack): Promise<void> {
  const rand = random(3);
  for (const connections of TEARDOWN_VARIANTS) {
    const texts = range(connections).map((c) =>
      subscribes(range(TEARDOWN_SUBSCRIPTIONS).map((i) => [`td${connections}-${c}-${i}`, ...sample(VOCABULARY, 8, rand)])),
    );
    const held = await subscribeAll(attack, texts, texts.map(() => TEARDOWN_SUBSCRIPTIONS), 30_000);
    const holding = held.clients.reduce((sum, client) => sum + client.lines - client.errors, 0);
    await sleep(1000);
    const at = now();
    for (const client of held.clients) client.socket.resetAndDestroy();
    await sleep(3000);
    await attack.measure(
      `${connections} connection(s) × ${TEARDOWN_SUBSCRIPTIONS} subscriptions closed at once`,
      at - 200,
      at + 3000,
      true,
      `${holding} subscriptions held before the close (taken in ${fmt(held.seconds)} s)`,
    );
  }
}

/**
 * 4. Unfinished lines: 2,000 connections each send a 1 MB line with no
 * newline, then idle. The server's memory growth is its peak RSS over the
 * attack minus its RSS before; connections the server closes are counted,
 * with when.
 */
async function unfinishedLines(attack: Attack): Promise<void> {
  let count = UNFINISHED_CONNECTIONS;
  const limit = fdLimits().soft;
  if (limit < count + 300) {
    count = Math.max(100, limit - 300);
    attack.notes.push(`this process's fd limit is ${limit}: ${count} connections instead of ${UNFINISHED_CONNECTIONS}`);
  }
  const head = '{"command":"publish","tags":["a"],"data":"';
  const lineBytes = Buffer.alloc(UNFINISHED_LINE_BYTES, 'x');
  lineBytes.write(head);
  const from = now();
  const clients: Client[] = [];
  // In batches, so the listen backlog is not overrun; every client writes the same buffer (no copy per connection).
  for (let first = 0; first < count; first += 200) {
    const batch = await Promise.all(range(Math.min(200, count - first)).map(() => attack.client().catch(() => undefined)));
    for (const client of batch) {
      if (!client) continue;
      clients.push(client);
      client.socket.write(lineBytes);
    }
  }
  const opened = clients.length;
  // Sent: every line handed to the kernel (or its connection closed).
  const sentAll = (async () => {
    while (clients.some((c) => c.closedAt === undefined && c.socket.writableLength > 0)) await sleep(100);
  })();
  const sentInTime = await within(sentAll, 30_000);
  const sentAt = now();
  const idleUntil = Date.now() + UNFINISHED_IDLE_MS;
  while (Date.now() < idleUntil && clients.some((c) => c.closedAt === undefined)) await sleep(200);
  const to = now();
  const closed = clients.filter((c) => c.closedAt !== undefined).map((c) => (c.closedAt! - from) / 1000).sort((a, b) => a - b);
  const handed = clients.reduce((sum, c) => sum + (UNFINISHED_LINE_BYTES - c.socket.writableLength), 0);
  const closes = closed.length ? `${closed.length} closed by the server, from ${fmt(closed[0]!)} s to ${fmt(closed.at(-1)!)} s` : 'none closed by the server';
  const report = await attack.measure(
    `${opened} × ${fmt(UNFINISHED_LINE_BYTES / 1e6)} MB unfinished lines, then idle`,
    from,
    to,
    true,
    `${closes}; ${fmt(handed / 1e9)} GB handed to the kernel ${sentInTime ? `by ${fmt((sentAt - from) / 1000)} s` : 'when sending was cut at 30 s'}`,
  );
  const replies = clients.find((c) => c.firstError)?.firstError;
  if (replies) attack.notes.push(`an error reply before a close: ${replies}`);
  const growth = report.rssPeak - report.rssBase;
  attack.verdict(
    `isolation unfinished-lines: memory growth ≤ ${UNFINISHED_MEMORY_MB} MB`,
    growth <= UNFINISHED_MEMORY_MB * MB,
    `${mb(growth)} (RSS ${mb(report.rssBase)} → peak ${mb(report.rssPeak)}) for ${opened} connections × ${fmt(UNFINISHED_LINE_BYTES / 1e6)} MB; ${closes}`,
  );
  attack.summary.memory = mb(growth);
  attack.summary.extra = closes;
}

/**
 * Writes `bytes(i)` one byte per write on `socket` (no Nagle), at most
 * `count` bytes or for `maxMs`, spaced by at least 1/BYTEWISE_RATE s, so that
 * each byte goes out as its own segment; stops early if the connection closes.
 */
async function sendBytewise(client: Client, bytes: (i: number) => Buffer, count: number, maxMs: number): Promise<{ sent: number; seconds: number }> {
  const socket = client.socket;
  socket.setNoDelay(true);
  const start = performance.now();
  const gapMs = 1000 / BYTEWISE_RATE;
  let sent = 0;
  let next = start;
  let sliceStart = start;
  while (sent < count && client.closedAt === undefined) {
    const t = performance.now();
    if (t - start >= maxMs) break;
    if (t - sliceStart > 10) {
      // Let this event loop run (the socket's events) every 10 ms.
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
      continue;
    }
    // Spin to the next byte's time: sleeping (Atomics.wait, timers) is too coarse for these gaps, and
    // bytes written back to back after a late wake would reach the server in one read.
    if (t < next) continue;
    // One write per byte; none while the kernel has not taken the last (queued bytes would go out together).
    if (socket.writableLength > 0) continue;
    socket.write(bytes(sent++));
    // Never catch up in a burst: each byte at least half a gap after the last.
    next = Math.max(next + gapMs, t + gapMs / 2);
  }
  return { sent, seconds: (performance.now() - start) / 1000 };
}

/**
 * 5. Bytewise line: one connection (no Nagle) sends one line a byte per
 * write, paced so that each byte goes out as its own segment and the server
 * reads about one at a time (its read syscalls show how far that held).
 * Bounded by 1 MB or 25 s; the memory growth is scaled per MB sent.
 *
 * Reading that many tiny segments beside the feed makes V8 double the
 * server's young generation, once or twice, whatever the line holds: with
 * blank lines alone, new space went from 8.4 to 16.8 MB (+8 MB of RSS). So
 * the young generation is pinned at its full size from the start, and a
 * warm-up sends blank lines ("\n", which the server ignores) a byte per
 * segment first; the growth counts from the RSS after it: what the
 * unfinished line holds, not a fixed cost that a short send scales up.
 */
async function bytewise(attack: Attack): Promise<void> {
  const warmer = await attack.client();
  const pid = attack.server.pid;
  const warmFrom = now();
  const warmIo = syscalls(pid);
  const warm = await sendBytewise(warmer, () => NEWLINE_BYTE, Infinity, BYTEWISE_WARMUP_MS);
  const warmReads = syscalls(pid).reads - warmIo.reads;
  // A server that closes a connection this slow has done its warming up all the same: the line goes on a new one.
  const warmClosed = warmer.closedAt !== undefined ? ` (closed by the server after ${fmt((warmer.closedAt - warmFrom) / 1000)} s)` : '';
  const client = warmClosed ? await attack.client() : warmer;
  await sleep(200);
  const head = Buffer.from('{"command":"publish","tags":["a"],"data":"');
  const io0 = syscalls(pid);
  const from = now();
  const { sent, seconds } = await sendBytewise(client, (i) => (i < head.length ? head.subarray(i, i + 1) : X_BYTE), BYTEWISE_BYTES, BYTEWISE_MAX_MS);
  const to = now();
  const reads = syscalls(pid).reads - io0.reads;
  await attack.measure(
    `warm-up: blank lines, one byte per segment`,
    warmFrom,
    from - 200,
    false,
    `${warm.sent} bytes in ${fmt(warm.seconds)} s; ${warmReads} server reads (${fmt(warm.sent / Math.max(1, warmReads))} bytes per read)${warmClosed}`,
  );
  await sleep(500);
  const closedBy = client.closedAt !== undefined ? `; closed by the server after ${fmt((client.closedAt - from) / 1000)} s` : '';
  const report = await attack.measure(
    `${fmt(sent / 1e6)} MB line, one byte per segment`,
    from,
    to + 500,
    true,
    `${sent} bytes in ${fmt(seconds)} s; ${reads} server reads (${fmt(sent / Math.max(1, reads))} bytes per read, probe traffic included)${closedBy}`,
  );
  const growth = report.rssPeak - report.rssBase;
  // Bytes of memory per byte sent, i.e. MB per MB.
  const ratio = sent > 0 ? growth / sent : NaN;
  attack.verdict(
    `isolation bytewise: ≤ ${BYTEWISE_MB_PER_MB} MB of memory per MB sent`,
    sent > 0 && ratio <= BYTEWISE_MB_PER_MB,
    `${fmt(ratio)} MB per MB: RSS ${mb(report.rssBase)} → peak ${mb(report.rssPeak)} (+${mb(growth)}) for ${fmt(sent / 1e6)} MB sent one byte per segment${closedBy}`,
  );
  attack.summary.memory = `${fmt(ratio)} MB per MB sent`;
}

const NEWLINE_BYTE = Buffer.from('\n');
const X_BYTE = Buffer.from('x');

interface GuessCounts {
  /** Wrong guesses the server answered (an "invalid token" error, or a 401). */
  answered: number;
  /** Answers that were no answer to the guess (any other error, 429…), by their text. */
  refused: Map<string, number>;
  /** Connections the server closed before answering anything. */
  silentCloses: number;
  connections: number;
  connectErrors: number;
  /** Wrong guesses the server accepted (should never happen). */
  accepted: number;
}

/**
 * Opens connections as fast as the server takes them, `GUESS_PARALLEL` at
 * a time, for `ms`, reconnecting whenever one closes; `converse` runs one
 * connection and resolves when it is over.
 */
async function guessLoop(attack: Attack, ms: number, converse: (socket: Socket, counts: GuessCounts, end: number) => Promise<void>, port: number): Promise<GuessCounts> {
  const counts: GuessCounts = { answered: 0, refused: new Map(), silentCloses: 0, connections: 0, connectErrors: 0, accepted: 0 };
  const end = performance.now() + ms;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const socket = attack.socket(port);
      counts.connections++;
      let connected = false;
      socket.once('connect', () => (connected = true));
      // Never past the end: the conversation is cut there.
      const cut = setTimeout(() => socket.destroy(), Math.max(0, end - performance.now()));
      await converse(socket, counts, end);
      clearTimeout(cut);
      socket.destroy();
      // (One cut at the end before it connected is no error.)
      if (!connected && performance.now() < end) {
        counts.connectErrors++;
        await sleep(10);
      }
    }
  };
  await Promise.all(range(GUESS_PARALLEL).map(loop));
  return counts;
}

let guessNumber = 0;
const wrongToken = (): string => `wrong-${++guessNumber}`;

function refuse(counts: GuessCounts, what: string): void {
  counts.refused.set(what, (counts.refused.get(what) ?? 0) + 1);
}

/** One TCP guessing connection: three wrong auths at once, then one more per answer, until the server closes it. */
function converseTcp(socket: Socket, counts: GuessCounts, end: number): Promise<void> {
  return new Promise((resolve) => {
    let answers = 0;
    let connected = false;
    const guess = (): string => line({ command: 'auth', data: wrongToken() });
    socket.once('connect', () => {
      connected = true;
      socket.write(guess() + guess() + guess());
    });
    readLines(socket, (text) => {
      const reply = parse(text);
      if (reply.command === 'auth' && reply.data === 'success') counts.accepted++;
      else if (reply.command === 'auth' && /invalid token/i.test(reply.error ?? '')) {
        answers++;
        counts.answered++;
        if (performance.now() < end && !socket.destroyed) socket.write(guess());
      } else refuse(counts, `tcp: ${reply.error ?? text.slice(0, 80)}`);
    });
    socket.once('close', () => {
      // (Cut at the end of the phase is not the server's doing.)
      if (answers === 0 && connected && performance.now() < end) counts.silentCloses++;
      resolve();
    });
  });
}

/** One HTTP guessing connection: a `POST /publish` with a wrong X-AUTH-TOKEN; the status says what became of it. */
function converseHttp(socket: Socket, counts: GuessCounts, end: number): Promise<void> {
  return new Promise((resolve) => {
    let answered = false;
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      socket.write(publishRequest(wrongToken(), ['a']));
    });
    readLines(socket, (text) => {
      if (answered) return;
      answered = true;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      if (status === '401') counts.answered++;
      else if (status === '204') counts.accepted++;
      else refuse(counts, `http: ${status ? `HTTP ${status}` : text.slice(0, 80)}`);
      // Answered: on to the next connection at once, whether or not the server would keep this one open.
      socket.destroy();
    });
    socket.once('close', () => {
      if (!answered && connected && performance.now() < end) counts.silentCloses++;
      resolve();
    });
  });
}

/** Registers the good token as admin, on a connection of its own. */
async function registerGoodToken(server: ServerUnderTest): Promise<Partial<ProbeConfig>> {
  const socket = connect({ port: server.port, host: HOST });
  socket.on('error', () => {});
  const replies: string[] = [];
  const done = new Promise<void>((resolve) => {
    readLines(socket, (text) => {
      replies.push(text);
      if (replies.length === 2) resolve();
    });
  });
  socket.write(line({ command: 'auth', data: ADMIN_TOKEN }) + line({ command: 'register', tags: ['a'], data: GOOD_TOKEN }));
  const answered = await within(done, 10_000);
  socket.destroy();
  if (!answered || !replies.every((text) => parse(text).data === 'success')) throw new Error(`could not register the good token: ${replies.join(' ')}`);
  // The probe's own connections authenticate as admin: legitimate clients, whatever tags the feed uses.
  return { token: ADMIN_TOKEN, goodToken: GOOD_TOKEN };
}

/**
 * 6. Reconnect-and-guess, against a server with an authenticator: 10 s of
 * wrong `auth` over TCP from 64 connections at a time (three guesses at
 * once, one more per answer, reconnecting whenever the server closes), then
 * 10 s of `POST /publish` with a wrong X-AUTH-TOKEN, one per connection,
 * likewise. All from 127.0.0.1: every answered guess counts against that
 * one address. Meanwhile the probe authenticates with a good token, from 127.0.0.2.
 */
async function reconnectAndGuess(attack: Attack): Promise<void> {
  const phases: Array<{ label: string; port: number; converse: (socket: Socket, counts: GuessCounts, end: number) => Promise<void> }> = [
    { label: 'tcp', port: attack.server.port, converse: converseTcp },
    { label: 'http', port: attack.httpPort!, converse: converseHttp },
  ];
  const rates: string[] = [];
  for (const phase of phases) {
    const from = now();
    const counts = await guessLoop(attack, GUESS_MS, phase.converse, phase.port);
    const to = now();
    attack.destroySockets();
    const seconds = (to - from) / 1000;
    const rate = counts.answered / seconds;
    const refused = [...counts.refused].map(([what, n]) => `${n}× ${what}`).join('; ') || 'none';
    const report = await attack.measure(
      `wrong tokens over ${phase.label.toUpperCase()}, ${GUESS_PARALLEL} at a time`,
      from,
      to,
      true,
      `${counts.answered} answered (${fmt(rate)}/s) on ${counts.connections} connections; refusals: ${refused}; closed unanswered: ${counts.silentCloses}; connect errors: ${counts.connectErrors}`,
    );
    attack.verdict(
      `isolation guess ${phase.label}: ≤ ${GUESSES_PER_SECOND} answered wrong guesses per second per address`,
      rate <= GUESSES_PER_SECOND && counts.accepted === 0,
      `${fmt(rate)}/s from 127.0.0.1 (${counts.answered} in ${fmt(seconds)} s over ${counts.connections} connections; ${counts.silentCloses} closed unanswered; refusals: ${refused})`,
    );
    const checks = report.good[phase.label as 'tcp' | 'http'];
    const good = `${checks.n - checks.failed} of ${checks.n} succeeded, p50 ${ms(checks.p50)} ms, max ${ms(checks.max)} ms${checks.firstFailure ? ` (first failure: ${checks.firstFailure})` : ''}`;
    attack.notes.push(`good token over ${phase.label.toUpperCase()} during the attack: ${good}`);
    attack.verdict(
      // No target was set for this; the bench holds it to the bystander's maximum.
      `isolation guess ${phase.label}: a good token still authenticates (every check succeeds, max ≤ ${PING_MAX_MS} ms)`,
      checks.n > 0 && checks.failed === 0 && checks.max <= PING_MAX_MS,
      good,
    );
    rates.push(`${phase.label} ${fmt(rate)}/s`);
  }
  attack.summary.extra = `answered wrong guesses: ${rates.join(', ')}`;
}

const ATTACKS: AttackSpec[] = [
  {
    name: 'crafted',
    title: '1. Crafted subscriptions',
    describe: [
      `${CRAFT_CONNECTIONS} connections × ${CRAFT_PAIRS} pairs A+{X}, A+{Y}: A a random ${CRAFT_SUBSET}-tag subset of a ${CRAFT_MESSAGE_TAGS}-tag message M,`,
      `X and Y tags M lacks, made popular first by ${CRAFT_FILLER} throwaway subscriptions {X, unique} and as many {Y, unique} from another connection.`,
      `Then one publish of M alone, and up to ${CRAFT_ROUNDS} batches of ${CRAFT_BATCH} publishes of M in one write, 0.5 s apart (a ping after each says when`,
      `it is done; a batch not done in ${CRAFT_BATCH_LIMIT_MS / 1000} s ends the publishing, and none starts after ${CRAFT_PUBLISHING_MS / 1000} s). Judged: the publishes.`,
    ],
    limitMs: 90_000,
    body: craftedSubscriptions,
  },
  {
    name: 'flood',
    title: '2. Subscribe flood',
    describe: [`${FLOOD_CONNECTIONS} connections each write ${FLOOD_SUBSCRIBES} subscribes (distinct 4-tag sets) in one write, all at once; judged until every reply is in.`],
    limitMs: 60_000,
    body: subscribeFlood,
  },
  {
    name: 'teardown',
    title: '3. Teardown of big connections',
    describe: [
      `Connections holding ${TEARDOWN_SUBSCRIPTIONS} subscriptions each (distinct 9-tag sets) close abruptly (RST): ${TEARDOWN_VARIANTS.join(', then ')} at once.`,
      'Judged: from 0.2 s before the close to 3 s after.',
    ],
    limitMs: 90_000,
    body: teardown,
  },
  {
    name: 'unfinished-lines',
    title: '4. Unfinished lines',
    describe: [
      `${UNFINISHED_CONNECTIONS} connections each send a ${fmt(UNFINISHED_LINE_BYTES / 1e6)} MB line (under the 1 MiB line limit) without a newline, then idle up to ${UNFINISHED_IDLE_MS / 1000} s.`,
      `Target: server memory growth (peak RSS − RSS before) ≤ ${UNFINISHED_MEMORY_MB} MB. Connections the server closes are counted, with when.`,
    ],
    limitMs: 90_000,
    body: unfinishedLines,
  },
  {
    name: 'bytewise',
    title: '5. Bytewise line',
    describe: [
      `One connection (no Nagle) sends one line a byte per write, at most ${BYTEWISE_RATE} bytes/s so each byte is its own segment; at most ${fmt(BYTEWISE_BYTES / 1e6)} MB or ${BYTEWISE_MAX_MS / 1000} s,`,
      `after a ${BYTEWISE_WARMUP_MS / 1000} s warm-up of blank lines sent the same way (the growth counts from the RSS after it).`,
      `Target: ≤ ${BYTEWISE_MB_PER_MB} MB of server memory growth per MB sent.`,
      `The server's young generation is pinned at 2 × ${BYTEWISE_SEMI_SPACE_MB} MB (V8's maximum) from the start, and history keeps the last ${BYTEWISE_HISTORY} messages:`,
      `otherwise the young generation doubles once or twice under this traffic, blank lines or not (+8 MB of RSS each time), and history retains`,
      `the subscriber's feed all through the window; both are bounded costs of their own, not what the line holds.`,
    ],
    limitMs: 60_000,
    mist: {
      config: { history: { maxMessages: BYTEWISE_HISTORY } },
      nodeArgs: [`--min-semi-space-size=${BYTEWISE_SEMI_SPACE_MB}`, `--max-semi-space-size=${BYTEWISE_SEMI_SPACE_MB}`],
    },
    body: bytewise,
  },
  {
    name: 'guess',
    title: '6. Reconnect-and-guess',
    describe: [
      `Server with --authenticator memory:// --token ${ADMIN_TOKEN}; a good token registered first (tags a).`,
      `${GUESS_MS / 1000} s over TCP (auth with wrong tokens, 3 at once then one per answer, reconnecting when closed), then ${GUESS_MS / 1000} s over HTTP`,
      `(POST /publish with a wrong X-AUTH-TOKEN, one per connection), ${GUESS_PARALLEL} connections at a time, all from 127.0.0.1.`,
      `Target: ≤ ${GUESSES_PER_SECOND} answered wrong guesses (an auth error, a 401) per second per address; refusals (429, other errors, closes) are counted apart.`,
      `The probe authenticates as admin, and checks the good token every ${GOOD_CHECK_EVERY_MS} ms over TCP and HTTP from ${USER_ADDRESS}.`,
    ],
    limitMs: 60_000,
    mist: { config: { authenticator: 'memory://', token: ADMIN_TOKEN }, http: true },
    prepare: registerGoodToken,
    body: reconnectAndGuess,
  },
];

export async function isolationBench(): Promise<void> {
  console.log('\n## isolation — what one abusive client costs the others: a bystander pinging every 20 ms, a subscriber fed 50 msg/s, the server\'s memory\n');
  const started = performance.now();
  const results: AttackResult[] = [];
  // ISOLATION_ONLY=crafted,guess runs some of the attacks only.
  const only = process.env.ISOLATION_ONLY?.split(',').filter(Boolean);
  for (const spec of ATTACKS) if (!only || only.includes(spec.name)) results.push(await runAttack(spec));

  console.log('\n### isolation summary (worst judged window of each attack)\n');
  table(
    ['attack', 'ping p99 ms', 'ping max ms', 'lost', 'reordered', 'memory', 'other', 'took s'],
    results.map((r) => {
      const judged = r.rows.filter((row) => row.judged).map((row) => row.report);
      const worst = (key: 'p99' | 'max'): string => (judged.length ? ms(Math.max(...judged.map((report) => report[key]))) : '-');
      return [r.spec.title, worst('p99'), worst('max'), r.feed?.lost ?? '-', r.feed?.reordered ?? '-', r.summary.memory ?? '', r.summary.extra ?? '', fmt(r.seconds)];
    }),
  );
  console.log(`\n  isolation took ${fmt((performance.now() - started) / 1000)} s`);
}

// Run as the probe (a child process of the bench): see Probe.start.
if (process.argv[2] === PROBE_FLAG && process.send) probeProcess();
