/**
 * Fan-out cost: the server's own CPU time per delivery at a fixed offered
 * load, mist (subscribers over TCP, WebSocket and SSE) against
 * redis-server and nats-server in the same shapes and run, for three
 * publisher patterns, with latency, loss and order checked at every
 * subscriber. Subscribers and publishers run in worker threads of this
 * process (bench/loadgen.mjs); the servers are child processes, whose CPU is
 * read from /proc so the load generator's is left out.
 *
 * `FANOUT_ONLY=matrix,one,flush,near,wide,max` runs some parts only;
 * `FANOUT_ROUNDS=N` repeats the interleaved comparisons N times (default 2);
 * `MIST_BASELINE=/path/to/another/checkout` adds that mist's rows beside
 * this one's (an A/B of two versions in the same run).
 */
import { cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { cpuTimes, fmt, sleep, startMist, startNats, startRedis, startRelay, syscalls, table, verdict, type ServerUnderTest } from './lib.ts';

const LOADGEN = new URL('./loadgen.mjs', import.meta.url);
const PAYLOAD_BYTES = 100;
/** The message's tags (mist); the channel (Redis, NATS). Subscribers subscribe to the first tag. */
const MESSAGE_TAGS = ['fan', 'blue', 'green', 'red'];
const CHANNEL = 'fan';
const WARMUP_MS = 1000;
const MEASURE_MS = 3000;
/** Subscriber threads of the load generator, at most: enough that none is the limit (each reports how busy it was). */
const SUBSCRIBER_THREADS = 4;
const ROUNDS = Number(process.env.FANOUT_ROUNDS ?? 2);
const BASELINE = process.env.MIST_BASELINE;

/** How a mist subscriber connects: JSON lines over TCP, WebSocket text frames, or Server-Sent Events. */
export type Transport = 'tcp' | 'ws' | 'sse';
/** How the publisher spaces its messages (bench/loadgen.mjs): evenly, what is due per 1 ms tick, or Poisson arrivals. */
export type Pattern = 'even' | 'burst' | 'poisson';
const PATTERNS: Pattern[] = ['even', 'burst', 'poisson'];

export interface Shape {
  label: string;
  publishers: number;
  subscribers: number;
  /** Messages a second from each publisher. */
  rate: number;
  pattern: Pattern;
  /** Near-miss subscriptions each subscriber also holds (mist only). */
  nearMiss?: number;
}

/** The main shape: one publisher at 2000 msg/s, evenly paced, to 100 subscribers. */
export const MAIN_SHAPE: Shape = { label: '1 → 100 @ 2000/s', publishers: 1, subscribers: 100, rate: 2000, pattern: 'even' };

/** A server and, for mist, the transport its subscribers use (publishers always use its TCP port). */
export interface Target {
  name: string;
  server: ServerUnderTest;
  transport?: Transport;
}

export interface Result {
  target: string;
  shape: Shape;
  deliveries: number;
  cpuUsPerDelivery: number;
  /** The kernel's share of that CPU (system time ÷ user + system). */
  systemShare: number;
  /** Write syscalls the server made per delivery (1 = one per message per subscriber). */
  writesPerDelivery: number;
  /** Read syscalls the server made per delivery. */
  readsPerDelivery: number;
  /** Server CPU over the window as a share of one core. */
  serverCore: number;
  /** Load generator (this process, all threads) CPU over the window as a share of one core. */
  loadgenCore: number;
  /** The busiest subscriber thread's event-loop utilisation over the window. */
  subscriberBusy: number;
  /** Share of the messages the publisher wrote more than 1 ms after they were due. */
  publisherLate: number;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  reordered: number;
  skipped: number;
  /** The machine's 1-minute load average at the end of the window. */
  load: number;
}

class Agent {
  private readonly worker: Worker;
  private readonly waiting = new Map<string, Array<(msg: any) => void>>();
  readonly errors: string[] = [];

  constructor(data: Record<string, unknown>) {
    this.worker = new Worker(LOADGEN, { workerData: data, execArgv: [] });
    this.worker.on('message', (msg: { type: string; message?: string }) => {
      if (msg.type === 'error') {
        this.errors.push(msg.message!);
        return;
      }
      const queue = this.waiting.get(msg.type);
      const resolve = queue?.shift();
      if (resolve) resolve(msg);
    });
    this.worker.on('error', (err) => this.errors.push(String(err)));
  }

  next<T = any>(type: string, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`loadgen: no "${type}" within ${timeoutMs} ms ${this.errors.join('; ')}`)), timeoutMs);
      const queue = this.waiting.get(type) ?? [];
      queue.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.waiting.set(type, queue);
    });
  }

  ask<T = any>(type: string, extra: Record<string, unknown> = {}, reply = type): Promise<T> {
    const answer = this.next<T>(reply);
    this.worker.postMessage({ type, ...extra });
    return answer;
  }

  async close(): Promise<void> {
    await this.ask('close', {}, 'closed').catch(() => undefined);
    await this.worker.terminate();
  }
}

/** The load generator's protocol and port for a target's subscribers. */
function subscriberEnd(target: Target): { protocol: string; port: number } {
  const { server, transport = 'tcp' } = target;
  if (server.kind !== 'mist' || transport === 'tcp') return { protocol: server.kind, port: server.port };
  if (!server.web) throw new Error(`${target.name}: mist was started without its web listeners`);
  return transport === 'ws' ? { protocol: 'mist-ws', port: server.web.ws } : { protocol: 'mist-sse', port: server.web.http };
}

type Mark = { idle: number; active: number };

/** Told when a run's measured window starts and ends (a profiler attaching). */
export interface MeasuredWindow {
  start(): Promise<void> | void;
  end(): Promise<void> | void;
}

export interface ShapeOptions {
  measureMs?: number;
  window?: MeasuredWindow;
  /** Where the publishers connect, when not to the subscribers' server (two nodes of a cluster); its CPU is counted too. */
  publishTo?: ServerUnderTest;
  /** Awaited once the subscribers are ready, before publishing starts (a cluster learning of them). */
  ready?: () => Promise<void>;
}

/** Runs one shape against one target (or two servers: `publishTo`), with fresh connections. */
export async function runShape(target: Target, shape: Shape, options: ShapeOptions = {}): Promise<Result> {
  const measureMs = options.measureMs ?? MEASURE_MS;
  const { server } = target;
  const servers = options.publishTo ? [server, options.publishTo] : [server];
  const cpuTimesOf = (): { user: number; system: number } =>
    servers.map((s) => cpuTimes(s.pid)).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }));
  const syscallsOf = (): { reads: number; writes: number } =>
    servers.map((s) => syscalls(s.pid)).reduce((a, b) => ({ reads: a.reads + b.reads, writes: a.writes + b.writes }));
  const { protocol, port } = subscriberEnd(target);
  const threads = Math.min(SUBSCRIBER_THREADS, shape.subscribers);
  const subs: Agent[] = [];
  const per = Math.ceil(shape.subscribers / threads);
  for (let first = 0; first < shape.subscribers; first += per) {
    subs.push(
      new Agent({
        role: 'subscribers',
        protocol,
        port,
        count: Math.min(per, shape.subscribers - first),
        first,
        tags: [MESSAGE_TAGS[0]],
        channel: CHANNEL,
        nearMiss: shape.nearMiss ?? 0,
        publishers: shape.publishers,
      }),
    );
  }
  try {
    await Promise.all(subs.map((s) => s.next('ready')));
  } catch (err) {
    for (const s of subs) await s.close();
    throw err;
  }
  await options.ready?.();
  const pub = new Agent({
    role: 'publishers',
    protocol: server.kind,
    port: (options.publishTo ?? server).port,
    count: shape.publishers,
    first: 0,
    tags: MESSAGE_TAGS,
    channel: CHANNEL,
    payloadBytes: PAYLOAD_BYTES,
  });
  try {
    await pub.next('ready');
    const done = pub.ask<{ sent: number; skipped: number }>('start', { rate: shape.rate, pattern: shape.pattern, durationMs: WARMUP_MS + measureMs + 200 }, 'done');
    await sleep(WARMUP_MS);
    await Promise.all(subs.map((s) => s.ask('reset')));
    const m0 = await pub.ask<{ sent: number; late: number }>('mark');
    const e0 = await Promise.all(subs.map((s) => s.ask<Mark>('mark')));
    await options.window?.start();
    const c0 = cpuTimesOf();
    const s0 = syscallsOf();
    const g0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(measureMs);
    const m1 = await pub.ask<{ sent: number; late: number }>('mark');
    const e1 = await Promise.all(subs.map((s) => s.ask<Mark>('mark')));
    const c1 = cpuTimesOf();
    const s1 = syscallsOf();
    const g1 = process.cpuUsage(g0);
    const elapsed = (performance.now() - t0) / 1000;
    await options.window?.end();
    const load = loadavg()[0]!;
    const { sent, skipped } = await done;
    // Let the last messages arrive.
    const expected = (sent - skipped) * shape.subscribers;
    let reports: Array<{ received: number; reordered: number; histogram: number[] }> = [];
    for (let wait = 0; wait < 50; wait++) {
      await sleep(100);
      reports = await Promise.all(subs.map((s) => s.ask('report')));
      if (reports.reduce((a, r) => a + r.received, 0) >= expected) break;
    }
    const received = reports.reduce((a, r) => a + r.received, 0);
    const histogram = new Array<number>(reports[0]!.histogram.length).fill(0);
    for (const r of reports) r.histogram.forEach((n, i) => (histogram[i]! += n));
    const published = m1.sent - m0.sent;
    const deliveries = published * shape.subscribers;
    const busy = e1.map((e, i) => (e.active - e0[i]!.active) / (e.active - e0[i]!.active + e.idle - e0[i]!.idle));
    const cpu = c1.user - c0.user + c1.system - c0.system;
    return {
      target: target.name,
      shape,
      deliveries,
      cpuUsPerDelivery: (cpu * 1e6) / deliveries,
      systemShare: (c1.system - c0.system) / cpu,
      writesPerDelivery: (s1.writes - s0.writes) / deliveries,
      readsPerDelivery: (s1.reads - s0.reads) / deliveries,
      serverCore: cpu / elapsed,
      loadgenCore: (g1.user + g1.system) / 1e6 / elapsed,
      subscriberBusy: Math.max(...busy),
      publisherLate: (m1.late - m0.late) / Math.max(1, published),
      p50Ms: percentile(histogram, 0.5),
      p99Ms: percentile(histogram, 0.99),
      lost: Math.max(0, expected - received),
      reordered: reports.reduce((a, r) => a + r.reordered, 0),
      skipped: skipped * shape.subscribers,
      load,
    };
  } finally {
    await pub.close();
    for (const s of subs) await s.close();
  }
}

/** The latency below which `q` of the samples fall, in ms (10 µs buckets). */
function percentile(histogram: number[], q: number): number {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= q * total) return ((i + 1) * 10) / 1000;
  }
  return Infinity;
}

/**
 * '-' when the run kept up with the offered load; else which side ran out
 * first: the server (a core of its own, nearly all used), a load generator
 * thread, or the machine (the server and the load generator together using
 * nearly every core, the server short of one).
 */
function limitOf(r: Result): string {
  if (r.skipped === 0 && r.lost === 0 && r.p50Ms < 50) return '-';
  if (r.serverCore >= 0.85) return 'server';
  if (r.subscriberBusy >= 0.85) return 'load generator';
  if (r.serverCore + r.loadgenCore >= 0.85 * cpus().length) return 'machine (all cores busy)';
  return 'unclear';
}

const HEADERS = [
  'shape',
  'server',
  'offered',
  'CPU µs/delivery',
  'kernel',
  'writes/delivery',
  'server CPU',
  'loadgen CPU',
  'busiest sub thread',
  'pub late',
  'p50 ms',
  'p99 ms',
  'lost',
  'reordered',
  'limit',
  'load',
];

function row(r: Result): Array<string | number> {
  const s = r.shape;
  return [
    s.label,
    r.target,
    `${fmt((s.rate * s.publishers * s.subscribers) / 1000)}k/s`,
    fmt(r.cpuUsPerDelivery),
    `${Math.round(r.systemShare * 100)}%`,
    fmt(r.writesPerDelivery, 2),
    `${Math.round(r.serverCore * 100)}%`,
    `${Math.round(r.loadgenCore * 100)}%`,
    `${Math.round(r.subscriberBusy * 100)}%`,
    `${fmt(r.publisherLate * 100, 2)}%`,
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    r.lost,
    r.reordered,
    limitOf(r),
    fmt(r.load, 2),
  ];
}

/** The median of `values` (the mean of the middle two for an even count). */
function middle(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}

const clean = (r: Result) => r.lost === 0 && r.reordered === 0 && r.skipped === 0;
const shapeLabel = (subscribers: number, rate: number, pattern: Pattern) => `1 → ${subscribers} @ ${rate}/s ${pattern}`;

/** The runs of each target on each shape, by `target|shape`. */
type Cells = Map<string, Result[]>;

/**
 * Runs every shape against every target, `ROUNDS` times, the targets
 * interleaved within each round so that noise hits all alike, after a
 * warm-up of each; returns the runs of each (target, shape).
 */
async function interleaved(targets: Target[], shapes: Shape[], all: Result[]): Promise<Cells> {
  // A freshly started Node server runs its first seconds unoptimised: warm every target up first.
  for (const target of targets) await runShape(target, { label: 'warm-up', publishers: 1, subscribers: 100, rate: 2000, pattern: 'even' }, { measureMs: 500 });
  const cells: Cells = new Map();
  for (const shape of shapes) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const result = await runShape(target, shape);
        all.push(result);
        console.log(`  measured: ${row(result).join(' | ')}`);
        const key = `${target.name}|${shape.label}`;
        cells.set(key, [...(cells.get(key) ?? []), result]);
      }
    }
  }
  return cells;
}

/** The median of a metric over a cell's runs. */
function med(cells: Cells, target: string, shape: Shape, metric: (r: Result) => number): number {
  const runs = cells.get(`${target}|${shape.label}`);
  return runs ? middle(runs.map(metric)) : NaN;
}

/** The median over rounds of `compare(a's run, b's run)` in the same round. */
function perRound(cells: Cells, a: string, b: string, shape: Shape, compare: (a: Result, b: Result) => number): number {
  const ra = cells.get(`${a}|${shape.label}`)!;
  const rb = cells.get(`${b}|${shape.label}`)!;
  return middle(ra.map((r, i) => compare(r, rb[i]!)));
}

/** The median over rounds of `a`'s CPU per delivery ÷ `b`'s in the same round. */
function ratio(cells: Cells, a: string, b: string, shape: Shape): number {
  return perRound(cells, a, b, shape, (x, y) => x.cpuUsPerDelivery / y.cpuUsPerDelivery);
}

/** The servers of the comparisons: Redis, NATS, and mist (with the baseline checkout's, if given), started once. */
async function startServers(): Promise<{ targets: Target[]; stop: () => Promise<void> }> {
  const redis = await startRedis();
  const nats = await startNats();
  const mist = await startMist({ web: true });
  const servers = [redis, nats, mist];
  const targets: Target[] = [
    { name: 'redis-server', server: redis },
    { name: 'nats-server', server: nats },
    { name: 'mist tcp', server: mist, transport: 'tcp' },
    { name: 'mist ws', server: mist, transport: 'ws' },
    { name: 'mist sse', server: mist, transport: 'sse' },
  ];
  if (BASELINE) {
    const before = await startMist({ web: true, root: BASELINE, name: 'mist baseline' });
    servers.push(before);
    for (const transport of ['tcp', 'ws', 'sse'] as const) targets.push({ name: `baseline ${transport}`, server: before, transport });
  }
  return { targets, stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

const wanted = (part: string) => {
  const only = process.env.FANOUT_ONLY?.split(',').filter(Boolean);
  return !only || only.includes(part);
};

export async function fanoutBench(): Promise<void> {
  console.log('\n## fanout — server CPU per delivery at a fixed offered load (100-byte data; mist JSON lines, WebSocket, SSE; Redis RESP; NATS)\n');
  console.log(`load average at the start: ${loadavg().map((l) => fmt(l, 2)).join(', ')} (2 cores: above 2, the figures are mostly the machine's)\n`);
  const all: Result[] = [];
  const { targets, stop } = await startServers();
  try {
    if (wanted('matrix')) await matrix(targets, all);
    if (wanted('one')) await oneToOne(targets, all);
  } finally {
    await stop();
  }
  if (wanted('flush')) await flushIntervals(all);
  if (wanted('near')) await nearMiss(all);
  if (wanted('wide')) await wideAndRelay(all);
  console.log('\nEvery run:\n');
  table(HEADERS, all.map(row));
  if (wanted('max')) await maxRate();
}

/** 1 → 100 at 500 and 2000 msg/s, each publisher pattern, every server and transport. */
async function matrix(targets: Target[], all: Result[]): Promise<void> {
  console.log(`\n### 1 → 100: every server and transport, three publisher patterns, ${ROUNDS} rounds interleaved\n`);
  const shapes: Shape[] = [];
  for (const rate of [2000, 500]) for (const pattern of PATTERNS) shapes.push({ label: shapeLabel(100, rate, pattern), publishers: 1, subscribers: 100, rate, pattern });
  const cells = await interleaved(targets, shapes, all);
  summary(cells, targets, shapes);
  for (const shape of shapes) {
    const p99 = (name: string) => med(cells, name, shape, (r) => r.p99Ms);
    const cpu = (name: string) => med(cells, name, shape, (r) => r.cpuUsPerDelivery);
    const tcpVsRedis = ratio(cells, 'mist tcp', 'redis-server', shape);
    verdict(
      `${shape.label}: mist tcp CPU/delivery ≤ redis-server`,
      tcpVsRedis <= 1,
      `${fmt(cpu('mist tcp'))} µs vs ${fmt(cpu('redis-server'))} µs (ratio ${fmt(tcpVsRedis)}; nats-server ${fmt(cpu('nats-server'))} µs)`,
    );
    // Over max(2 ms, Redis's p99), round by round: the p99s move together with the machine.
    const over = perRound(cells, 'mist tcp', 'redis-server', shape, (x, y) => x.p99Ms - Math.max(2, y.p99Ms));
    verdict(
      `${shape.label}: mist tcp p99 ≤ max(2 ms, redis-server's)`,
      over <= 0,
      `${fmt(p99('mist tcp'))} ms vs redis ${fmt(p99('redis-server'))} ms, nats ${fmt(p99('nats-server'))} ms (medians; per round ${fmt(over, 2)} ms over)`,
    );
    for (const transport of ['ws', 'sse']) {
      const name = `mist ${transport}`;
      const vsTcp = ratio(cells, name, 'mist tcp', shape);
      verdict(`${shape.label}: ${name} CPU/delivery ≤ 1.2× mist tcp`, vsTcp <= 1.2, `${fmt(cpu(name))} µs vs ${fmt(cpu('mist tcp'))} µs (ratio ${fmt(vsTcp)})`);
      const above = perRound(cells, name, 'mist tcp', shape, (x, y) => x.p99Ms - y.p99Ms);
      verdict(
        `${shape.label}: ${name} p99 within 1 ms of mist tcp`,
        above <= 1,
        `${fmt(p99(name))} ms vs ${fmt(p99('mist tcp'))} ms (medians; per round ${fmt(above, 2)} ms above)`,
      );
    }
  }
  const mistRuns = [...cells.entries()].filter(([key]) => key.startsWith('mist ')).flatMap(([, runs]) => runs);
  const sum = (key: 'lost' | 'reordered' | 'skipped') => mistRuns.reduce((total, r) => total + r[key], 0);
  verdict(
    '1 → 100: mist zero loss, zero reordering (every run, every transport)',
    mistRuns.every(clean),
    `${mistRuns.length} runs: lost ${sum('lost')}, reordered ${sum('reordered')}, held back ${sum('skipped')}`,
  );
}

/** The median of each target and shape, with its ratios to Redis and to mist over TCP. */
function summary(cells: Cells, targets: Target[], shapes: Shape[]): void {
  console.log(`\nMedians over ${ROUNDS} rounds (ratios: per round, against the run next to it, then their median):\n`);
  const rows: Array<Array<string | number>> = [];
  for (const shape of shapes) {
    for (const { name } of targets) {
      const runs = cells.get(`${name}|${shape.label}`);
      if (!runs) continue;
      const m = (metric: (r: Result) => number) => middle(runs.map(metric));
      rows.push([
        shape.label,
        name,
        fmt(m((r) => r.cpuUsPerDelivery)),
        fmt(ratio(cells, name, 'redis-server', shape)),
        cells.has(`mist tcp|${shape.label}`) ? fmt(ratio(cells, name, 'mist tcp', shape)) : '-',
        fmt(m((r) => r.writesPerDelivery), 2),
        fmt(m((r) => r.p50Ms)),
        fmt(m((r) => r.p99Ms)),
        `${Math.round(m((r) => r.serverCore) * 100)}%`,
        `${Math.round(m((r) => r.subscriberBusy) * 100)}%`,
        runs.map(limitOf).join(', '),
      ]);
    }
  }
  table(['shape', 'server', 'CPU µs/delivery', '× redis', '× mist tcp', 'writes/delivery', 'p50 ms', 'p99 ms', 'server CPU', 'busiest sub thread', 'limit'], rows);
  console.log('');
}

/** 1 → 1 at 2000 msg/s: the cost per message when nothing is shared. */
async function oneToOne(targets: Target[], all: Result[]): Promise<void> {
  console.log(`\n### 1 → 1 @ 2000/s, ${ROUNDS} rounds interleaved\n`);
  const shapes = PATTERNS.map((pattern): Shape => ({ label: shapeLabel(1, 2000, pattern), publishers: 1, subscribers: 1, rate: 2000, pattern }));
  const cells = await interleaved(targets, shapes, all);
  summary(cells, targets, shapes);
  for (const shape of shapes) {
    const r = ratio(cells, 'mist tcp', 'redis-server', shape);
    const cpu = (name: string) => med(cells, name, shape, (x) => x.cpuUsPerDelivery);
    verdict(
      `${shape.label}: mist tcp within 1.5× redis-server per message`,
      r <= 1.5,
      `${fmt(cpu('mist tcp'))} µs vs ${fmt(cpu('redis-server'))} µs (ratio ${fmt(r)}; nats-server ${fmt(cpu('nats-server'))}, mist ws ${fmt(cpu('mist ws'))}, sse ${fmt(cpu('mist sse'))})`,
    );
  }
}

/** How `flushIntervalMs` trades p99 against writes: mist over TCP at several intervals beside redis-server, every pattern at 2000/s. */
async function flushIntervals(all: Result[]): Promise<void> {
  console.log(`\n### flushIntervalMs: writes against latency, 1 → 100 @ 2000/s, ${ROUNDS} rounds interleaved\n`);
  const intervals = [0, 0.75, 1.5, 3];
  const redis = await startRedis();
  const servers = await Promise.all(intervals.map((flushIntervalMs) => startMist({ limits: { flushIntervalMs } })));
  try {
    const targets: Target[] = [{ name: 'redis-server', server: redis }, ...servers.map((server, i): Target => ({ name: `mist tcp flush=${intervals[i]}`, server }))];
    const shapes = PATTERNS.map((pattern): Shape => ({ label: shapeLabel(100, 2000, pattern), publishers: 1, subscribers: 100, rate: 2000, pattern }));
    summary(await interleaved(targets, shapes, all), targets, shapes);
  } finally {
    await Promise.all([redis, ...servers].map((s) => s.stop()));
  }
}

/** 1000 near-miss subscriptions per subscriber against none, interleaved. */
async function nearMiss(all: Result[]): Promise<void> {
  console.log('\n### near-miss subscriptions, 1 → 100 @ 2000/s even\n');
  const server = await startMist();
  try {
    const plain: Shape = { label: shapeLabel(100, 2000, 'even'), publishers: 1, subscribers: 100, rate: 2000, pattern: 'even' };
    const near: Shape = { ...plain, label: `${plain.label}, 1000 near-miss subs each`, nearMiss: 1000 };
    const target: Target = { name: 'mist tcp', server };
    const cells = await interleaved([target], [plain, near], all);
    const cpu = (shape: Shape) => med(cells, 'mist tcp', shape, (r) => r.cpuUsPerDelivery);
    const nearRuns = cells.get(`mist tcp|${near.label}`)!;
    verdict(
      'fanout near-miss (1000 per subscriber): ≤ 1.25× the plain cost',
      cpu(near) <= 1.25 * cpu(plain) && nearRuns.every(clean),
      `${fmt(cpu(near))} µs vs ${fmt(cpu(plain))} µs (ratio ${fmt(cpu(near) / cpu(plain))})`,
    );
    const p99 = med(cells, 'mist tcp', near, (r) => r.p99Ms);
    verdict('fanout near-miss: p99 ≤ 2 ms', p99 <= 2, `p99 ${fmt(p99)} ms (plain ${fmt(med(cells, 'mist tcp', plain, (r) => r.p99Ms))} ms)`);
  } finally {
    await server.stop();
  }
}

/** A plain Node relay on the main shape (what Node itself costs), and 10 → 1000. */
async function wideAndRelay(all: Result[]): Promise<void> {
  console.log('\n### a plain Node relay, and 10 → 1000 @ 20/s each\n');
  const measure = async (start: () => Promise<ServerUnderTest>, name: string, shape: Shape) => {
    const server = await start();
    try {
      const result = await runShape({ name, server }, shape);
      all.push(result);
      console.log(`  measured: ${row(result).join(' | ')}`);
    } finally {
      await server.stop();
    }
  };
  for (const pattern of ['even', 'burst'] as const) {
    const main: Shape = { label: shapeLabel(100, 2000, pattern), publishers: 1, subscribers: 100, rate: 2000, pattern };
    await measure(startRelay, 'plain Node relay', main);
  }
  await measure(startRelay, 'plain Node relay', { label: shapeLabel(1, 2000, 'even'), publishers: 1, subscribers: 1, rate: 2000, pattern: 'even' });
  const wide: Shape = { label: '10 → 1000 @ 20/s each', publishers: 10, subscribers: 1000, rate: 20, pattern: 'even' };
  await measure(startRedis, 'redis-server', wide);
  await measure(() => startMist(), 'mist tcp', wide);
}

/**
 * Raises the offered load of 1 → 100 until a server loses a message, holds
 * its publisher back (stops reading fast enough) or its p99 passes a second
 * (a queue growing without bound).
 */
async function maxRate(): Promise<void> {
  console.log('\n### maximum sustained rate, 1 → 100, evenly paced (zero loss, publisher never held back, p99 < 1 s)\n');
  const rates = [2000, 5000, 10000, 20000];
  const rows: Array<Array<string | number>> = [];
  const candidates: Array<[string, () => Promise<ServerUnderTest>, Transport]> = [
    ['redis-server', () => startRedis(), 'tcp'],
    ['mist tcp', () => startMist(), 'tcp'],
    ['mist ws', () => startMist({ web: true }), 'ws'],
  ];
  if (BASELINE) candidates.push(['baseline ws', () => startMist({ web: true, root: BASELINE }), 'ws']);
  for (const [name, start, transport] of candidates) {
    let best: Result | undefined;
    let failed: Result | undefined;
    for (const rate of rates) {
      const server = await start();
      let result: Result;
      try {
        result = await runShape({ name, server, transport }, { label: `1 → 100 @ ${rate}/s`, publishers: 1, subscribers: 100, rate, pattern: 'even' }, { measureMs: 2500 });
      } finally {
        await server.stop();
      }
      console.log(`  measured: ${row(result).join(' | ')}`);
      const ok = clean(result) && result.p99Ms < 1000;
      if (!ok) {
        failed = result;
        break;
      }
      best = result;
    }
    rows.push([
      name,
      best ? `${fmt((best.shape.rate * 100) / 1000)}k/s` : '-',
      best ? fmt(best.cpuUsPerDelivery) : '-',
      best ? `${Math.round(best.serverCore * 100)}%` : '-',
      failed ? `${(failed.shape.rate * 100) / 1000}k/s: lost ${failed.lost}, held back ${failed.skipped}, p99 ${fmt(failed.p99Ms)} ms` : `passed all up to ${(rates.at(-1)! * 100) / 1000}k/s`,
      failed ? `${limitOf(failed)} (server ${Math.round(failed.serverCore * 100)}%, busiest sub thread ${Math.round(failed.subscriberBusy * 100)}%)` : 'not reached',
    ]);
  }
  console.log('');
  table(['server', 'max sustained deliveries', 'CPU µs/delivery there', 'server CPU', 'next step', 'limit at next step'], rows);
}
