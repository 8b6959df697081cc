/**
 * What history costs, and how fast a resume replays.
 *
 * - CPU per delivery at the fan-out shape of bench/fanout.ts (1 → 100 @
 *   2000/s) with history on (the default) and off, in interleaved rounds,
 *   medians compared: the target is on ≤ 1.15 × off. On one node, and on
 *   two nodes of a cluster over Redis and over NATS (publisher on node A,
 *   the 100 subscribers on node B; both nodes' CPU counted, not the
 *   backplane's), where history on sends every message through the
 *   backplane's stream instead of its pub/sub channel.
 * - What history adds to a publish, in process: making a message's frame
 *   with and without an id and retention (garbage collection included).
 * - The replay rate of a 10,000-message resume, against the live delivery
 *   of the same messages to one client in the same run, with the server's
 *   CPU per message of each.
 */
import { connect, type Socket } from 'node:net';
import { History } from '../core/history.ts';
import { Frame } from '../core/protocol.ts';
import { DEFAULT_HISTORY } from '../host/defaults.ts';
import { dropHistory, reachable } from '../test/helpers/backplane-services.ts';
import { MAIN_SHAPE, runShape, type Result, type ShapeOptions } from './fanout.ts';
import { blocked, cpuSeconds, fmt, freePort, median, sleep, startMist, table, verdict, type ServerUnderTest } from './lib.ts';

const ROUNDS = 5;
const REPLAYED = 10_000;
const REPLAY_ROUNDS = 5;

export async function historyBench(): Promise<void> {
  console.log('\n## history — CPU per delivery with history on and off, and the replay rate of a resume\n');
  await onOff('single node', async (config) => ({ server: await startMist({ config }) }));
  for (const [kind, port] of [['redis', 6379], ['nats', 4222]] as const) {
    if (await reachable(port)) await onOff(`2 nodes over ${kind}`, (config, run) => twoNodes(`${kind}://127.0.0.1:${port}?prefix=mist-bench.history.${process.pid}.${run}`, config));
    else blocked(`history: cluster over ${kind}`, `${kind} is not reachable on 127.0.0.1:${port}`);
  }
  perPublish();
  await replayRate();
}

/** CPU per publish to make the frame (and its line) without history and with it, retention and its garbage included, in this process. */
function perPublish(): void {
  const tags = ['fan', 'blue', 'green', 'red'];
  const data = JSON.stringify(`#0,12345,1733040000000000,${'x'.repeat(70)}`);
  const history = new History({ ...DEFAULT_HISTORY });
  const cost = (make: () => Frame): number => {
    for (let i = 0; i < 200_000; i++) void make().line;
    const before = process.cpuUsage();
    for (let i = 0; i < 1_000_000; i++) void make().line;
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1_000_000;
  };
  const rounds = [0, 1, 2].map(() => ({ off: cost(() => Frame.publish(tags, data)), on: cost(() => history.record(1, tags, data)) }));
  const added = median(rounds.map((r) => r.on - r.off));
  console.log(`\n### what history adds to a publish (its frame, in process, ${MAIN_SHAPE.label}'s message)\n`);
  table(
    ['round', 'off µs/publish', 'on µs/publish'],
    rounds.map((r, i) => [i + 1, fmt(r.off), fmt(r.on)]),
  );
  console.log(`\nhistory adds ${fmt(added)} µs a publish: ${fmt(added / MAIN_SHAPE.subscribers, 2)} µs a delivery at ${MAIN_SHAPE.subscribers} subscribers, besides the id's bytes on every delivery`);
}

/** What one run of the shape runs against, and what to do after it. */
interface Setup {
  server: ServerUnderTest;
  options?: ShapeOptions;
  cleanUp?: () => Promise<void>;
}

/** Node B (the subscribers') and node A (the publisher's) of a cluster on `uri`, publishing once A has heard of B's subscription. */
async function twoNodes(uri: string, config: Record<string, unknown>): Promise<Setup> {
  const metrics = [await freePort(), await freePort()];
  const nodeB = await startMist({ config: { ...config, cluster: uri }, extraListeners: [`http://127.0.0.1:${metrics[0]}`] });
  const nodeA = await startMist({ config: { ...config, cluster: uri }, extraListeners: [`http://127.0.0.1:${metrics[1]}`] });
  const ready = async (): Promise<void> => {
    for (let tries = 0; ; tries++) {
      const text = await (await fetch(`http://127.0.0.1:${metrics[1]}/metrics`)).text();
      if (/^mist_cluster_backplane_up 1$/m.test(text) && /^mist_cluster_remote_subscriptions [1-9]/m.test(text)) return;
      if (tries === 200) throw new Error(`the cluster on ${uri} did not form`);
      await sleep(50);
    }
  };
  return {
    server: nodeB,
    options: { publishTo: nodeA, ready },
    cleanUp: async () => {
      await nodeA.stop();
      await dropHistory(uri);
    },
  };
}

/** The fan-out shape with history on and off, interleaved, on what `setup` starts. */
async function onOff(label: string, setup: (config: Record<string, unknown>, run: string) => Promise<Setup>): Promise<void> {
  const runs: Record<'on' | 'off', Result[]> = { on: [], off: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['on', 'off'] as const) {
      const { server, options, cleanUp } = await setup(mode === 'off' ? { history: false } : {}, `${round}.${mode}`);
      try {
        const result = await runShape({ name: label, server }, MAIN_SHAPE, options);
        runs[mode].push(result);
        console.log(`  measured: ${label}, history ${mode}: ${fmt(result.cpuUsPerDelivery)} µs/delivery, p99 ${fmt(result.p99Ms)} ms, lost ${result.lost}`);
      } finally {
        await server.stop();
        await cleanUp?.();
      }
    }
  }
  const medianOf = (results: Result[]) => median(results.map((r) => r.cpuUsPerDelivery));
  const [on, off] = [medianOf(runs.on), medianOf(runs.off)];
  console.log(`\n${label}:\n`);
  table(
    ['history', 'CPU µs/delivery (each round)', 'median', 'p99 ms (each round)', 'lost'],
    (['on', 'off'] as const).map((mode) => [
      mode,
      runs[mode].map((r) => fmt(r.cpuUsPerDelivery)).join(', '),
      fmt(medianOf(runs[mode])),
      runs[mode].map((r) => fmt(r.p99Ms)).join(', '),
      runs[mode].reduce((sum, r) => sum + r.lost, 0),
    ]),
  );
  console.log('');
  const lost = [...runs.on, ...runs.off].reduce((sum, r) => sum + r.lost + r.reordered, 0);
  verdict(
    `history: CPU per delivery with history on ≤ 1.15× off, ${MAIN_SHAPE.label}, ${label}`,
    on <= 1.15 * off && lost === 0,
    `on ${fmt(on)} µs vs off ${fmt(off)} µs (ratio ${fmt(on / off)}), medians of ${ROUNDS} interleaved rounds; lost or reordered ${lost}`,
  );
}

/** A raw client that counts the lines it receives and keeps the last. */
class Reader {
  lines = 0;
  last = '';
  private carry = '';
  private waiting: { count: number; resolve: () => void } | undefined;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      const parts = (this.carry + text).split('\n');
      this.carry = parts.pop()!;
      this.lines += parts.length;
      if (parts.length > 0) this.last = parts.at(-1)!;
      if (this.waiting && this.lines >= this.waiting.count) this.waiting.resolve();
    });
  }

  static open(server: ServerUnderTest): Promise<Reader> {
    return new Promise((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => resolve(new Reader(socket)));
      socket.once('error', reject);
    });
  }

  /** Resolves once `count` lines have come in all. */
  until(count: number): Promise<void> {
    if (this.lines >= count) return Promise.resolve();
    return new Promise((resolve) => (this.waiting = { count, resolve }));
  }

  send(message: unknown): void {
    this.socket.write(JSON.stringify(message) + '\n');
  }
}

/** 10,000 messages delivered live to one client, then replayed to a new one, each timed, server CPU read around each. */
async function replayRate(): Promise<void> {
  const server = await startMist({ name: 'mist', config: { history: { maxMessages: 2 * REPLAYED } } });
  const rows: Array<{ liveMs: number; liveCpu: number; replayMs: number; replayCpu: number }> = [];
  try {
    const data = 'x'.repeat(100);
    const batch = Array.from({ length: REPLAYED }, (_, n) => JSON.stringify({ command: 'publish', tags: ['r'], data: `${n} ${data}` }) + '\n').join('');
    const publisher = await Reader.open(server);
    for (let round = 0; round < REPLAY_ROUNDS; round++) {
      const live = await Reader.open(server);
      live.send({ command: 'subscribe', tags: ['r'] });
      live.send({ command: 'ping' });
      await live.until(2);
      publisher.send({ command: 'publish', tags: ['r'], data: 'mark' });
      await live.until(3);
      const mark = (JSON.parse(live.last) as { id: string }).id;

      let cpu = cpuSeconds(server.pid);
      let started = performance.now();
      publisher.socket.write(batch);
      await live.until(3 + REPLAYED);
      const liveMs = performance.now() - started;
      const liveCpu = cpuSeconds(server.pid) - cpu;

      const back = await Reader.open(server);
      back.send({ command: 'subscribe', tags: ['r'] });
      await back.until(1);
      cpu = cpuSeconds(server.pid);
      started = performance.now();
      back.send({ command: 'resume', data: mark });
      await back.until(1 + REPLAYED + 1);
      const replayMs = performance.now() - started;
      const replayCpu = cpuSeconds(server.pid) - cpu;
      if (!back.last.includes('"success"')) throw new Error(`resume did not succeed: ${back.last}`);
      rows.push({ liveMs, liveCpu, replayMs, replayCpu });
      live.socket.destroy();
      back.socket.destroy();
    }
    publisher.socket.destroy();
  } finally {
    await server.stop();
  }
  const rate = (ms: number) => (REPLAYED / ms) * 1000;
  console.log(`\n### replay of a ${REPLAYED.toLocaleString('en-US')}-message resume (100-byte data), against the same messages delivered live, ${REPLAY_ROUNDS} rounds\n`);
  table(
    ['round', 'live msg/s', 'live server CPU µs/msg', 'replay msg/s', 'replay server CPU µs/msg', 'replay ms'],
    rows.map((r, i) => [i + 1, fmt(rate(r.liveMs)), fmt((r.liveCpu * 1e6) / REPLAYED), fmt(rate(r.replayMs)), fmt((r.replayCpu * 1e6) / REPLAYED), fmt(r.replayMs)]),
  );
  const replay = median(rows.map((r) => rate(r.replayMs)));
  const live = median(rows.map((r) => rate(r.liveMs)));
  console.log('');
  verdict(
    `history: a ${REPLAYED.toLocaleString('en-US')}-message resume replays at least as fast as the same messages are delivered live`,
    replay >= live,
    `replay ${fmt(replay)} msg/s vs live ${fmt(live)} msg/s (ratio ${fmt(replay / live)}), medians of ${REPLAY_ROUNDS} rounds`,
  );
}
