/**
 * Where each microsecond of a delivery goes: `npm run bench -- profile`
 * runs fan-out shapes (bench/fanout.ts) against a fresh mist server three
 * times. Plain, for the CPU per delivery, its user and kernel parts and
 * the read and write syscalls (/proc). Under `node --cpu-prof`, whose
 * samples of the main thread within the measured window are split into
 * mist's JavaScript, ws, Node's stream, net and http layers, other Node
 * JavaScript, native calls (the write syscall above all: its kernel time
 * is spent inside the call), Node and libuv outside JavaScript
 * (`(program)`: the event loop, epoll) and GC; the profiler slows the
 * server, so these are shares of its busy time, and the microseconds are
 * those shares of the plain run's CPU per delivery. Under `strace -c`, for
 * the mix of syscalls (strace stops the server at each one, so it falls
 * behind and batches more: the plain run's counts are the ones to quote).
 *
 * `PROFILE=ws:100:2000:burst,tcp:1:2000:even` picks the shapes
 * (transport:subscribers:rate:pattern); `MIST_BASELINE=/path` profiles that
 * checkout too, shape by shape, for a before and after.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runShape, type MeasuredWindow, type Pattern, type Shape, type Transport } from './fanout.ts';
import { fmt, sleep, startMist, table } from './lib.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_SHAPES = 'tcp:100:2000:burst,ws:100:2000:burst,sse:100:2000:burst,tcp:1:2000:even,ws:1:2000:even';
/**
 * Sampling interval of the profiles, µs. Finer sampling costs the server
 * more and shifts the shares (at 100 µs, 1 → 1 cost four times its plain
 * CPU); a 3 s window at Node's default 1000 µs gives thousands of samples.
 */
const SAMPLE_US = 1000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The part of the process a profile node's self time belongs to. */
function category(node: ProfileNode, root: string): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'Node/libuv outside JS (event loop, epoll)';
  if (url === '') return 'native calls (writes, reads, timers)';
  if (url.includes('/node_modules/ws/')) return 'ws (handshake, control frames, reading)';
  if (url.includes('/node_modules/')) return 'other libraries';
  if (/^node:(internal\/streams|internal\/stream_base_commons|net|stream|_http_outgoing|_http_server|internal\/net)/.test(url)) return "Node's stream, net and http layers";
  if (url.startsWith('node:')) return 'other Node JavaScript (events, timers, buffers)';
  if (url.includes(root)) return "mist's JavaScript";
  return 'other JavaScript';
}

/** Time per category and per function within [from, to] (µs on the process's monotonic clock). */
function attribute(profile: CpuProfile, root: string, from: number, to: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    if (t < from || t > to) continue;
    const node = byId.get(profile.samples[i]!)!;
    // A sample stands for the interval up to the next one.
    const us = profile.timeDeltas[i + 1] ?? SAMPLE_US;
    const cat = category(node, root);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    const where = node.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|[^/]+\/[^/]+)$/, '$1');
    const name = `${node.callFrame.functionName || '(anonymous)'} ${where}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  return { categories, functions };
}

/** Deliveries mist has made so far (its /metrics). */
async function delivered(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return Number(/^mist_messages_delivered_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

/**
 * `strace -c -f` attached to `pid` over the window. Under strace every
 * syscall stops the server, which then falls behind: its counts are divided
 * by the deliveries it made in the window (its /metrics), not by those
 * offered.
 */
function straceWindow(pid: number, httpPort: number) {
  let child: ReturnType<typeof spawn> | undefined;
  let output = '';
  let first = 0;
  let made = 0;
  return {
    async start() {
      first = await delivered(httpPort);
      child = spawn('strace', ['-c', '-f', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await new Promise((resolve) => child!.stderr!.once('data', resolve));
    },
    async end() {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child!.kill('SIGINT');
      await exited;
      made = (await delivered(httpPort)) - first;
    },
    get deliveries() {
      return made;
    },
    calls(): Map<string, number> {
      const calls = new Map<string, number>();
      for (const line of output.split('\n')) {
        // % time, seconds, usecs/call, calls, [errors,] syscall
        const fields = line.trim().split(/\s+/);
        if (fields.length < 5 || !/^\d/.test(fields[0]!) || fields.at(-1) === 'total') continue;
        calls.set(fields.at(-1)!, Number(fields[3]));
      }
      return calls;
    },
  };
}

function parseShapes(spec: string): Array<{ transport: Transport; shape: Shape }> {
  return spec.split(',').map((item) => {
    const [transport, subscribers, rate, pattern] = item.split(':');
    return {
      transport: transport as Transport,
      shape: { label: `${transport} 1 → ${subscribers} @ ${rate}/s ${pattern}`, publishers: 1, subscribers: Number(subscribers), rate: Number(rate), pattern: pattern as Pattern },
    };
  });
}

const WARM_UP: Shape = { label: 'warm-up', publishers: 1, subscribers: 100, rate: 2000, pattern: 'even' };

/** Runs `shape` on a fresh mist of `root` (after a warm-up), started with `nodeArgs`. */
async function runOn(root: string, name: string, transport: Transport, shape: Shape, nodeArgs: string[], window?: MeasuredWindow) {
  const server = await startMist({ root, web: true, nodeArgs });
  try {
    await runShape({ name, server, transport }, WARM_UP, { measureMs: 500 });
    return { server, result: await runShape({ name, server, transport }, shape, { window }) };
  } finally {
    await server.stop();
  }
}

async function profileOnce(root: string, name: string, transport: Transport, shape: Shape) {
  const { result } = await runOn(root, name, transport, shape, []);
  // The profiled run.
  const dir = mkdtempSync(join(tmpdir(), 'mist-profile-'));
  const window: [number, number] = [0, 0];
  const clock = () => Number(process.hrtime.bigint() / 1000n);
  await runOn(root, name, transport, shape, ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${SAMPLE_US}`], {
    start: () => void (window[0] = clock()),
    end: () => void (window[1] = clock()),
  });
  await sleep(200);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const { categories, functions } = attribute(profile, root, window[0], window[1]);
  // The strace run: attached once the server runs, so the tracer needs its pid and port first.
  const traced = await startMist({ root, web: true });
  const strace = straceWindow(traced.pid, traced.web!.http);
  try {
    await runShape({ name, server: traced, transport }, WARM_UP, { measureMs: 500 });
    await runShape({ name, server: traced, transport }, shape, { window: strace });
  } finally {
    await traced.stop();
  }
  return { result, categories, functions, calls: strace.calls(), tracedDeliveries: strace.deliveries };
}

export async function profileBench(): Promise<void> {
  console.log(`\n## profile — where a delivery's microseconds go (--cpu-prof at ${SAMPLE_US} µs, strace -c)\n`);
  const roots: Array<[string, string]> = [['mist', ROOT]];
  if (process.env.MIST_BASELINE) roots.unshift(['baseline', process.env.MIST_BASELINE]);
  for (const { transport, shape } of parseShapes(process.env.PROFILE ?? DEFAULT_SHAPES)) {
    for (const [name, root] of roots) {
      const { result, categories, functions, calls, tracedDeliveries } = await profileOnce(root, name, transport, shape);
      const cpu = result.cpuUsPerDelivery;
      console.log(
        `\n### ${name}: ${shape.label} — ${fmt(cpu)} µs CPU/delivery (user ${fmt(cpu * (1 - result.systemShare))}, kernel ${fmt(cpu * result.systemShare)}), ` +
          `${fmt(result.writesPerDelivery, 2)} writes and ${fmt(result.readsPerDelivery, 2)} reads per delivery, p99 ${fmt(result.p99Ms)} ms, load ${fmt(result.load, 2)}\n`,
      );
      const busy = [...categories].filter(([cat]) => cat !== 'idle').reduce((a, [, us]) => a + us, 0);
      table(
        ['main thread, busy time (profiled run)', 'share', '≈ µs/delivery'],
        [...categories]
          .filter(([cat]) => cat !== 'idle')
          .sort((a, b) => b[1] - a[1])
          .map(([cat, us]) => [cat, `${Math.round((us / busy) * 100)}%`, fmt((us / busy) * cpu, 2)]),
      );
      console.log('');
      table(
        ['top functions (self)', 'share', '≈ µs/delivery'],
        [...functions]
          .filter(([fn]) => !fn.startsWith('(idle)'))
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12)
          .map(([fn, us]) => [fn, `${fmt((us / busy) * 100, 2)}%`, fmt((us / busy) * cpu, 2)]),
      );
      console.log('');
      table(
        [`syscall (strace -c, separate run: ${tracedDeliveries} deliveries)`, 'per delivery'],
        [...calls].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([call, n]) => [call, fmt(n / tracedDeliveries, 2)]),
      );
    }
  }
}
