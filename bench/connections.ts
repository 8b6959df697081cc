/**
 * Connections: server memory per idle TCP connection holding 10
 * subscriptions (resident memory of the server process, before and after),
 * and whether one node holds 10k and 50k of them. The server runs as a
 * child process with a raised fd limit (prlimit on that process only); the
 * clients are this process's sockets, with this process's own fd limit
 * raised the same way, spread over several loopback source addresses so
 * that 50k connections do not run out of ephemeral ports.
 */
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { blocked, fdLimits, fmt, rssBytes, sleep, startMist, startRedis, table, verdict, type ServerUnderTest } from './lib.ts';

const SUBSCRIPTIONS = 10;
const COUNTS = [10_000, 50_000];
/** Connections opened at once. */
const BATCH = 500;
const NEWLINE = 0x0a;

/**
 * Raises this process's own fd limit to `nofile` if it can (prlimit on this
 * pid only; past the hard limit that needs CAP_SYS_RESOURCE). Returns the
 * limit it has.
 */
function raiseOwnFdLimit(nofile: number): number {
  const { soft, hard } = fdLimits();
  if (soft >= nofile) return soft;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${nofile}:${nofile}`], { stdio: 'ignore' });
    return nofile;
  } catch {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' });
      return hard;
    } catch {
      return soft;
    }
  }
}

/** Opens connections `first`…`first + count - 1`, each subscribing to 10 distinct tag sets (channels for Redis); resolves once every reply is in. */
async function openIdle(server: ServerUnderTest, first: number, count: number, sockets: Socket[]): Promise<void> {
  for (let from = first; from < first + count; from += BATCH) {
    const batch: Array<Promise<void>> = [];
    for (let i = from; i < Math.min(from + BATCH, first + count); i++) {
      batch.push(
        new Promise((resolve, reject) => {
          // 127.0.0.1 … 127.0.0.4: four times the ephemeral port range.
          const socket = connect({ port: server.port, host: '127.0.0.1', localAddress: `127.0.0.${1 + (i % 4)}` });
          sockets.push(socket);
          let text = '';
          let expected: number;
          if (server.kind === 'mist') {
            for (let j = 0; j < SUBSCRIPTIONS; j++) text += `{"command":"subscribe","tags":["conn${i}","t${j}"]}\n`;
            expected = SUBSCRIPTIONS;
          } else {
            text = 'SUBSCRIBE';
            for (let j = 0; j < SUBSCRIPTIONS; j++) text += ` conn${i}:t${j}`;
            text += '\r\n';
            expected = SUBSCRIPTIONS * 6;
          }
          let lines = 0;
          socket.on('data', (chunk: Buffer) => {
            for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, at + 1)) lines++;
            if (lines >= expected) resolve();
          });
          socket.once('error', reject);
          socket.once('close', () => reject(new Error(`connection ${i} closed by the server after ${lines} reply lines`)));
          socket.once('connect', () => socket.write(text));
        }),
      );
    }
    await Promise.all(batch);
  }
}

/** Whether a fresh client still gets a reply (ping / PING) with every connection open; its round trip in ms. */
async function stillServes(server: ServerUnderTest): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('connect', () => socket.write(server.kind === 'mist' ? '{"command":"ping"}\n' : 'PING\r\n'));
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
  });
  return performance.now() - started;
}

interface Step {
  count: number;
  ok: boolean;
  rss: number;
  pingMs: number;
  error?: string;
}

/**
 * Opens the connections of `counts` in turn on one server, noting its
 * resident memory at each step: the first step's growth over the idle
 * server divided by its count is the average cost per connection (fixed
 * costs included, such as a young generation grown while the subscriptions
 * poured in); the growth from one step to the next is the marginal cost.
 */
async function measure(start: () => Promise<ServerUnderTest>, counts: readonly number[]): Promise<{ name: string; base: number; steps: Step[] }> {
  const server = await start();
  const sockets: Socket[] = [];
  const steps: Step[] = [];
  try {
    await sleep(500);
    const base = rssBytes(server.pid);
    let open = 0;
    for (const count of counts) {
      try {
        await openIdle(server, open, count - open, sockets);
        open = count;
        await sleep(2000);
        steps.push({ count, ok: true, rss: rssBytes(server.pid), pingMs: await stillServes(server) });
      } catch (err) {
        steps.push({ count, ok: false, rss: rssBytes(server.pid), pingMs: NaN, error: (err as Error).message });
        break;
      }
    }
    return { name: server.name, base, steps };
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
    await sleep(500);
  }
}

export async function connectionsBench(): Promise<void> {
  console.log(`\n## connections — idle TCP connections with ${SUBSCRIPTIONS} subscriptions each: server memory, and how many one node holds\n`);
  const nofile = Math.max(...COUNTS) + 1000;
  const limit = raiseOwnFdLimit(nofile);
  // Server and clients each need one fd per connection, plus a few of their own.
  const counts = COUNTS.map((n) => (n + 200 <= limit ? n : limit - 500));
  if (limit < nofile) {
    console.log(`  The fd limit here is ${limit} and cannot be raised (no CAP_SYS_RESOURCE):`);
    console.log(`  measuring ${counts.join(' and ')} connections instead of ${COUNTS.join(' and ')}.\n`);
  }
  const serverLimit = Math.min(nofile, limit);
  const results = [];
  for (const start of [() => startRedis({ nofile: serverLimit }), () => startMist({ nofile: serverLimit })]) {
    const result = await measure(start, counts);
    results.push(result);
    console.log(`  measured ${result.name}: ${result.steps.map((s) => `${s.count} ${s.ok ? 'held' : s.error}`).join(', ')}`);
  }
  const rows: Array<Array<string | number>> = [];
  const perConnection = new Map<string, { average: number; marginal: number }>();
  for (const { name, base, steps } of results) {
    let previous: Step | undefined;
    for (const step of steps) {
      const average = (step.rss - base) / step.count;
      const marginal = previous?.ok && step.ok ? (step.rss - previous.rss) / (step.count - previous.count) : NaN;
      if (!previous) perConnection.set(name, { average, marginal: NaN });
      else if (step.ok) perConnection.get(name)!.marginal = marginal;
      rows.push([name, step.count.toLocaleString('en-US'), step.ok ? 'yes' : `no: ${step.error}`, fmt(step.rss / 2 ** 20), fmt(average / 1024), fmt(marginal / 1024), fmt(step.pingMs)]);
      previous = step;
    }
  }
  console.log('');
  table(['server', 'connections', 'held', 'RSS (MB)', 'average KB per connection', 'marginal KB per connection', 'ping with all open (ms)'], rows);
  console.log('');
  const mist = perConnection.get('mist');
  const redis = perConnection.get('redis-server');
  if (mist) {
    const cost = Number.isFinite(mist.marginal) ? mist.marginal : mist.average;
    verdict(
      'connections: ≤ 12 KB per idle connection with 10 subscriptions',
      cost <= 12 * 1024,
      `mist ${fmt(mist.marginal / 1024)} KB marginal, ${fmt(mist.average / 1024)} KB average at ${counts[0]!.toLocaleString('en-US')}; redis-server ${fmt((redis?.marginal ?? NaN) / 1024)} KB marginal, ${fmt((redis?.average ?? NaN) / 1024)} KB average`,
    );
  }
  const mistSteps = results.find((r) => r.name === 'mist')?.steps ?? [];
  COUNTS.forEach((wanted, i) => {
    const step = mistSteps[i];
    const held = step?.ok ? step.count : 0;
    const target = `connections: one node holds ${wanted.toLocaleString('en-US')}`;
    const detail = step?.ok ? `held ${step.count.toLocaleString('en-US')}, ${fmt(step.rss / 2 ** 20)} MB resident, ping ${fmt(step.pingMs)} ms` : (step?.error ?? 'not reached');
    // A server process cannot hold more connections than its fd limit allows: past it, there is nothing to measure.
    if (counts[i] !== wanted && step?.ok) blocked(target, `${detail}; the fd limit here is ${limit} and cannot be raised, so ${wanted.toLocaleString('en-US')} cannot be tried`);
    else verdict(target, held === wanted, detail);
  });
}
