/**
 * Fan-out cost: the server's own CPU time per delivery at a fixed offered
 * load, mist against redis-server (and a plain Node relay, bench/relay.mjs,
 * for what Node itself costs) in the same shape and run, with latency,
 * loss and order checked at every subscriber. Subscribers and publishers run
 * in worker threads of this process (bench/loadgen.mjs); the servers are
 * child processes, whose CPU is read from /proc so the load generator's is
 * left out.
 */
import { Worker } from 'node:worker_threads';
import { cpuSeconds, fmt, sleep, syscalls, startMist, startRedis, startRelay, table, verdict, type ServerUnderTest } from './lib.ts';

const LOADGEN = new URL('./loadgen.mjs', import.meta.url);
const PAYLOAD_BYTES = 100;
/** The message's tags (mist); the channel (Redis). Subscribers subscribe to the first tag. */
const MESSAGE_TAGS = ['fan', 'blue', 'green', 'red'];
const CHANNEL = 'fan';
const WARMUP_MS = 1500;
const MEASURE_MS = 4000;

export interface Shape {
  label: string;
  publishers: number;
  subscribers: number;
  /** Messages a second from each publisher. */
  rate: number;
  /** Near-miss subscriptions each subscriber also holds (mist only). */
  nearMiss?: number;
}

export interface Result {
  server: string;
  shape: Shape;
  deliveries: number;
  cpuUsPerDelivery: number;
  /** Write syscalls the server made per delivery (1 = one per message per subscriber). */
  writesPerDelivery: number;
  /** Server CPU over the window as a share of one core. */
  serverCore: number;
  /** Load generator (this process, all threads) CPU over the window as a share of one core. */
  loadgenCore: number;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  reordered: number;
  skipped: number;
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

export interface ShapeOptions {
  measureMs?: number;
  /** Where the publishers connect, when not to the subscribers' server (two nodes of a cluster); its CPU is counted too. */
  publishTo?: ServerUnderTest;
  /** Awaited once the subscribers are ready, before publishing starts (a cluster learning of them). */
  ready?: () => Promise<void>;
}

/** Runs one shape against one server (or two: `publishTo`); the servers are started before and stopped after. */
export async function runShape(server: ServerUnderTest, shape: Shape, options: ShapeOptions = {}): Promise<Result> {
  const measureMs = options.measureMs ?? MEASURE_MS;
  const servers = options.publishTo ? [server, options.publishTo] : [server];
  const cpu = (): number => servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);
  const writes = (): number => servers.reduce((sum, s) => sum + syscalls(s.pid).writes, 0);
  const protocol = server.kind;
  const subWorkers = shape.subscribers >= 200 ? 4 : shape.subscribers >= 2 ? 2 : 1;
  const subs: Agent[] = [];
  const per = Math.ceil(shape.subscribers / subWorkers);
  for (let w = 0, first = 0; first < shape.subscribers; w++, first += per) {
    subs.push(
      new Agent({
        role: 'subscribers',
        protocol,
        port: server.port,
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
    protocol,
    port: (options.publishTo ?? server).port,
    count: shape.publishers,
    first: 0,
    tags: MESSAGE_TAGS,
    channel: CHANNEL,
    payloadBytes: PAYLOAD_BYTES,
  });
  try {
    await pub.next('ready');
    const done = pub.ask<{ sent: number; skipped: number }>('start', { rate: shape.rate, durationMs: WARMUP_MS + measureMs + 200 }, 'done');
    await sleep(WARMUP_MS);
    await Promise.all(subs.map((s) => s.ask('reset')));
    const m0 = await pub.ask<{ sent: number }>('mark');
    const c0 = cpu();
    const s0 = writes();
    const g0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(measureMs);
    const m1 = await pub.ask<{ sent: number }>('mark');
    const c1 = cpu();
    const s1 = writes();
    const g1 = process.cpuUsage(g0);
    const elapsed = (performance.now() - t0) / 1000;
    const { sent, skipped } = await done;
    // Let the last messages arrive.
    const expected = (sent - skipped) * shape.subscribers;
    let reports: Array<{ received: number; reordered: number; histogram: number[]; perConnection: number[] }> = [];
    for (let wait = 0; wait < 50; wait++) {
      await sleep(100);
      reports = await Promise.all(subs.map((s) => s.ask('report')));
      if (reports.reduce((a, r) => a + r.received, 0) >= expected) break;
    }
    const received = reports.reduce((a, r) => a + r.received, 0);
    const histogram = new Array<number>(reports[0]!.histogram.length).fill(0);
    for (const r of reports) r.histogram.forEach((n, i) => (histogram[i]! += n));
    const deliveries = (m1.sent - m0.sent) * shape.subscribers;
    return {
      server: server.name,
      shape,
      deliveries,
      cpuUsPerDelivery: ((c1 - c0) * 1e6) / deliveries,
      writesPerDelivery: (s1 - s0) / deliveries,
      serverCore: (c1 - c0) / elapsed,
      loadgenCore: (g1.user + g1.system) / 1e6 / elapsed,
      p50Ms: percentile(histogram, 0.5),
      p99Ms: percentile(histogram, 0.99),
      lost: Math.max(0, expected - received),
      reordered: reports.reduce((a, r) => a + r.reordered, 0),
      skipped: skipped * shape.subscribers,
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

async function measure(start: () => Promise<ServerUnderTest>, shape: Shape, measureMs?: number): Promise<Result> {
  const server = await start();
  try {
    return await runShape(server, shape, { measureMs });
  } finally {
    await server.stop();
  }
}

function row(r: Result): Array<string | number> {
  const s = r.shape;
  return [
    s.label,
    r.server,
    `${fmt((s.rate * s.publishers * s.subscribers) / 1000)}k/s`,
    fmt(r.cpuUsPerDelivery),
    fmt(r.writesPerDelivery, 2),
    `${Math.round(r.serverCore * 100)}%`,
    `${Math.round(r.loadgenCore * 100)}%`,
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    r.lost,
    r.reordered,
  ];
}

const HEADERS = ['shape', 'server', 'offered', 'CPU µs/delivery', 'writes/delivery', 'server CPU', 'loadgen CPU', 'p50 ms', 'p99 ms', 'lost', 'reordered'];

/** Flush settings of mist compared in the main shape: the default (1 ms) and a flush at the end of every turn. */
const FLUSH_VARIANTS = [
  { name: 'mist', limits: {} },
  { name: 'mist flushIntervalMs=1', limits: { flushIntervalMs: 1 } },
  { name: 'mist flushIntervalMs=0', limits: { flushIntervalMs: 0 } },
];
/** Rounds of the main comparison, interleaved (redis, mist, mist…, redis, …) so that noise hits all alike; medians are compared. */
const ROUNDS = 3;

/** The round with the median CPU per delivery. */
function medianRun(runs: Result[]): Result {
  return [...runs].sort((a, b) => a.cpuUsPerDelivery - b.cpuUsPerDelivery)[Math.floor(runs.length / 2)]!;
}

/** The main shape: one publisher at 2000 msg/s to 100 subscribers. */
export const MAIN_SHAPE: Shape = { label: '1 → 100 @ 2000/s', publishers: 1, subscribers: 100, rate: 2000 };

export async function fanoutBench(): Promise<void> {
  console.log('\n## fanout — server CPU per delivery at a fixed offered load (100-byte data, JSON lines / RESP over loopback TCP)\n');
  const main = MAIN_SHAPE;
  const nearMiss: Shape = { ...main, label: '1 → 100 @ 2000/s, 1000 near-miss subs each', nearMiss: 1000 };
  const oneToOne: Shape = { label: '1 → 1 @ 2000/s', publishers: 1, subscribers: 1, rate: 2000 };
  const wide: Shape = { label: '10 → 1000 @ 20/s each', publishers: 10, subscribers: 1000, rate: 20 };

  const results: Result[] = [];
  const run = async (start: () => Promise<ServerUnderTest>, shape: Shape) => {
    const result = await measure(start, shape);
    results.push(result);
    console.log(`  measured: ${row(result).join(' | ')}`);
    return result;
  };

  const redisRuns: Result[] = [];
  const mistRuns: Result[][] = FLUSH_VARIANTS.map(() => []);
  const nearRuns: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    redisRuns.push(await run(() => startRedis(), main));
    for (const [i, variant] of FLUSH_VARIANTS.entries()) mistRuns[i]!.push(await run(() => startMist({ name: variant.name, limits: variant.limits }), main));
    nearRuns.push(await run(() => startMist(), nearMiss));
  }
  const redis = medianRun(redisRuns);
  const mists = mistRuns.map(medianRun);
  const mistNear = medianRun(nearRuns);
  // A plain Node relay (every message written to every subscriber as it comes): what Node itself costs.
  const relay = await run(() => startRelay(), main);
  await run(() => startRedis(), oneToOne);
  await run(() => startMist(), oneToOne);
  await run(() => startRelay(), oneToOne);
  await run(() => startRedis(), wide);
  await run(() => startMist(), wide);

  console.log(`\nEvery run (the main and near-miss shapes ${ROUNDS} times, interleaved; their verdicts use each median run):\n`);
  table(HEADERS, results.map(row));
  console.log('\nMedian runs of the main and near-miss shapes, and the plain Node relay on the main shape:\n');
  table(HEADERS, [redis, ...mists, mistNear, relay].map(row));
  console.log('');

  const mist = mists[0]!;
  const clean = (r: Result) => r.lost === 0 && r.reordered === 0 && r.skipped === 0;
  verdict(
    'fanout 1→100 @2000/s: mist CPU/delivery ≤ redis-server',
    mist.cpuUsPerDelivery <= redis.cpuUsPerDelivery,
    `mist ${fmt(mist.cpuUsPerDelivery)} µs vs redis ${fmt(redis.cpuUsPerDelivery)} µs (ratio ${fmt(mist.cpuUsPerDelivery / redis.cpuUsPerDelivery)})`,
  );
  // Redis's own tail in the same run shows how much of it the load generator and the machine add.
  const redisTail = `redis-server p50 ${fmt(redis.p50Ms)} ms, p99 ${fmt(redis.p99Ms)} ms in the same run`;
  verdict('fanout 1→100 @2000/s: mist p99 ≤ 2 ms', mist.p99Ms <= 2, `p50 ${fmt(mist.p50Ms)} ms, p99 ${fmt(mist.p99Ms)} ms (${redisTail})`);
  const mistAll = results.filter((r) => r.server.startsWith('mist'));
  const sum = (key: 'lost' | 'reordered' | 'skipped') => mistAll.reduce((total, r) => total + r[key], 0);
  verdict(
    'fanout: mist zero loss, zero reordering (every run of every shape)',
    mistAll.every(clean),
    `${mistAll.length} runs: lost ${sum('lost')}, reordered ${sum('reordered')}, held back ${sum('skipped')}`,
  );
  verdict(
    'fanout near-miss (1000 per subscriber): ≤ 1.25× the plain cost',
    mistNear.cpuUsPerDelivery <= 1.25 * mist.cpuUsPerDelivery && clean(mistNear),
    `${fmt(mistNear.cpuUsPerDelivery)} µs vs ${fmt(mist.cpuUsPerDelivery)} µs (ratio ${fmt(mistNear.cpuUsPerDelivery / mist.cpuUsPerDelivery)}), lost ${mistNear.lost}, reordered ${mistNear.reordered}`,
  );
  verdict('fanout near-miss: p99 ≤ 2 ms', mistNear.p99Ms <= 2, `p50 ${fmt(mistNear.p50Ms)} ms, p99 ${fmt(mistNear.p99Ms)} ms (${redisTail})`);

  await maxRate();
}

/**
 * Raises the offered load of 1 → 100 until a server loses a message, holds
 * its publisher back (stops reading fast enough) or its p99 passes a second
 * (a queue growing without bound).
 */
async function maxRate(): Promise<void> {
  console.log('\n### maximum sustained rate, 1 → 100 (zero loss, publisher never held back, p99 < 1 s)\n');
  const rates = [2000, 5000, 10000, 20000];
  const rows: Array<Array<string | number>> = [];
  for (const [name, start] of [
    ['redis-server', () => startRedis()],
    ['mist', () => startMist()],
  ] as const) {
    let best: Result | undefined;
    let failed: Result | undefined;
    for (const rate of rates) {
      const result = await measure(start, { label: `1 → 100 @ ${rate}/s`, publishers: 1, subscribers: 100, rate }, 2500);
      console.log(`  measured: ${row(result).join(' | ')}`);
      const ok = result.lost === 0 && result.skipped === 0 && result.reordered === 0 && result.p99Ms < 1000;
      if (!ok) {
        failed = result;
        break;
      }
      best = result;
    }
    const limit = (r: Result | undefined) =>
      !r
        ? 'none reached'
        : r.serverCore >= 0.9
          ? 'server (≥ 90% of its one core)'
          : r.serverCore + r.loadgenCore >= 1.8
            ? 'both cores busy (server + load generator)'
            : 'latency (shared machine)';
    rows.push([
      name,
      best ? `${fmt((best.shape.rate * 100) / 1000)}k/s` : '-',
      best ? fmt(best.cpuUsPerDelivery) : '-',
      best ? `${Math.round(best.serverCore * 100)}%` : '-',
      best ? `${Math.round(best.loadgenCore * 100)}%` : '-',
      failed ? `${failed.shape.rate * 100 / 1000}k/s: lost ${failed.lost}, held back ${failed.skipped}, p99 ${fmt(failed.p99Ms)} ms` : `passed all up to ${rates.at(-1)! * 100 / 1000}k/s`,
      failed ? limit(failed) : 'load generator (highest rate tried)',
    ]);
  }
  console.log('');
  table(['server', 'max sustained deliveries', 'CPU µs/delivery there', 'server CPU', 'loadgen CPU', 'next step', 'limit at next step'], rows);
}
