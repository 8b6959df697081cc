/**
 * Cross-node fan-out against single-node fan-out.
 *
 *   npm run bench -- cluster [--messages 20000] [--subscribers 10] [--size 64]
 *   (npm run bench:cluster is the same)
 *
 * One publisher connection sends `messages` publishes as fast as it can;
 * `subscribers` connections all subscribed to the tag receive them. In the
 * single-node row everything is on one node; in the cluster rows the
 * publisher is on node A and every subscriber on node B, so each message
 * crosses the backplane once and B fans it out. The rate is deliveries
 * (messages × subscribers) per second from the first publish to the last
 * delivery; every row checks that nothing was lost. Redis and NATS must run
 * on their default ports (127.0.0.1:6379, :4222); an unreachable one is
 * reported and skipped. Everything runs in this one process, on loopback.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.ts';
import type { MistServer } from '../host/server.ts';
import { startServer } from '../host/start.ts';
import { dropHistory } from '../test/helpers/backplane-services.ts';
import { verdict } from './lib.ts';

const { values } = parseArgs({
  allowPositionals: true,
  options: {
    messages: { type: 'string', default: '20000' },
    subscribers: { type: 'string', default: '10' },
    size: { type: 'string', default: '64' },
  },
});
const MESSAGES = Number(values.messages);
const SUBSCRIBERS = Number(values.subscribers);
const PAYLOAD = 'x'.repeat(Number(values.size));
const TIMEOUT_MS = 60_000;
const logger = createLogger('ERROR', process.stderr);

interface Row {
  scenario: string;
  rate?: number;
  elapsedMs?: number;
  lost?: number;
  note?: string;
}

async function node(cluster?: string, history = true): Promise<MistServer> {
  return startServer({ listeners: ['tcp://127.0.0.1:0'], cluster, history: history && {} }, { logger });
}

function open(server: MistServer): Promise<Socket> {
  const { hostname, port } = new URL(server.url('tcp'));
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Counts the lines a socket receives; resolves `waitFor(n)` once it has `n`. */
function counter(socket: Socket): { count: () => number; waitFor: (n: number) => Promise<void> } {
  let lines = 0;
  let want = Infinity;
  let done: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
    if (lines >= want) done?.();
  });
  return {
    count: () => lines,
    waitFor: (n) =>
      new Promise<void>((resolve) => {
        want = n;
        done = resolve;
        if (lines >= n) resolve();
      }),
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function measure(scenario: string, publisherNode: MistServer, subscriberNode: MistServer): Promise<Row> {
  const subscribers = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => open(subscriberNode)));
  const counters = subscribers.map(counter);
  // Each subscribe is answered with one line; wait for all the answers.
  for (const socket of subscribers) socket.write('{"command":"subscribe","tags":["bench"]}\n');
  await Promise.all(counters.map((c) => c.waitFor(1)));
  if (publisherNode !== subscriberNode) await until(() => publisherNode.cluster!.status().remoteSubscriptions > 0, 'interest');
  const publisher = await open(publisherNode);
  const line = `{"command":"publish","tags":["bench"],"data":"${PAYLOAD}"}\n`;
  const start = process.hrtime.bigint();
  const chunk = line.repeat(500);
  for (let sent = 0; sent < MESSAGES; sent += 500) {
    const text = MESSAGES - sent >= 500 ? chunk : line.repeat(MESSAGES - sent);
    if (!publisher.write(text)) await new Promise((resolve) => publisher.once('drain', resolve));
  }
  const all = Promise.all(counters.map((c) => c.waitFor(MESSAGES + 1)));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, TIMEOUT_MS, true)))]);
  clearTimeout(timer);
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  const received = counters.reduce((sum, c) => sum + c.count() - 1, 0);
  for (const socket of [publisher, ...subscribers]) socket.destroy();
  const lost = MESSAGES * SUBSCRIBERS - received;
  return { scenario, rate: timedOut ? undefined : (MESSAGES * SUBSCRIBERS) / (elapsedMs / 1000), elapsedMs, lost };
}

/** With history on, messages cross through the backplane's stream; off, through its pub/sub channel (docs/cluster.md). */
async function clusterRow(kind: 'redis' | 'nats', port: number, history: boolean): Promise<Row> {
  const scenario = `2 nodes over ${kind}, history ${history ? 'on (stream)' : 'off (pub/sub)'}`;
  const uri = `${kind}://127.0.0.1:${port}?prefix=mist-bench.${process.pid}.${history ? 'on' : 'off'}`;
  const a = await node(uri, history);
  const b = await node(uri, history);
  try {
    try {
      await until(() => a.cluster!.state === 'up' && b.cluster!.state === 'up' && a.cluster!.status().peers === 1, 'connect');
    } catch {
      return { scenario, note: `${kind} not reachable on 127.0.0.1:${port}: skipped` };
    }
    return await measure(scenario, a, b);
  } finally {
    await a.close();
    await b.close();
    await dropHistory(uri);
  }
}

/** Prints the single-node row and one cross-node row per reachable backplane. */
export async function clusterBench(): Promise<void> {
  const rows: Row[] = [];
  {
    const single = await node();
    rows.push(await measure('single node', single, single));
    await single.close();
  }
  for (const [kind, port] of [['redis', 6379], ['nats', 4222]] as const) {
    for (const history of [true, false]) rows.push(await clusterRow(kind, port, history));
  }

  const base = rows[0]!.rate!;
  console.log(`cluster fan-out: ${MESSAGES} messages × ${SUBSCRIBERS} subscribers, ${PAYLOAD.length}-byte data`);
  console.log('| scenario | deliveries/s | elapsed ms | lost | vs single node |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) {
    if (row.note) {
      console.log(`| ${row.scenario} | – | – | – | ${row.note} |`);
      continue;
    }
    const rate = row.rate === undefined ? 'timed out' : Math.round(row.rate).toLocaleString('en-US');
    const ratio = row.rate === undefined ? '–' : `${(row.rate / base).toFixed(2)}×`;
    console.log(`| ${row.scenario} | ${rate} | ${row.elapsedMs!.toFixed(0)} | ${row.lost} | ${ratio} |`);
  }
  const lost = rows.reduce((sum, row) => sum + (row.lost ?? 0), 0);
  verdict('cluster: zero loss across nodes', lost === 0, `${lost} lost over ${rows.length} rows`);
}
