/**
 * Start-up: `mist --version`, and `mist ping` against a server already
 * running, as whole processes of the compiled executable (dist/cli/bin.js,
 * as users run it), against `node -e 0` — Node's own start-up, the floor no
 * command goes under. Each run of a command is paired with a run of the
 * baseline, in turns (A B, then B A), and the ratio is taken pair by pair,
 * so that a machine that slows down mid-bench slows both sides of a pair.
 * Targets: --version within 1.8×, ping within 2.5×. `mist --server` until
 * "mist is ready" is shown beside them, without a target.
 */
import { spawn } from 'node:child_process';
import { fmt, median, MIST_BIN, startMist, table, verdict } from './lib.ts';

/** Counted pairs per command, after the warm-up pairs. */
const PAIRS = 21;
const WARMUP_PAIRS = 2;
const SERVER_PAIRS = 5;

/**
 * Wall milliseconds of `node …args`: until it exits (with code 0), or with
 * `ready`, until its stdout matches it (then it is stopped).
 */
function run(args: string[], ready?: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let readyMs: number | undefined;
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text;
      if (ready && readyMs === undefined && ready.test(output)) {
        readyMs = performance.now() - started;
        child.kill('SIGTERM');
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (ready) return readyMs === undefined ? reject(new Error(`node ${args.join(' ')} ended before ${ready}:\n${output}`)) : resolve(readyMs);
      if (code !== 0) return reject(new Error(`node ${args.join(' ')} exited with ${code}:\n${output}`));
      resolve(performance.now() - started);
    });
  });
}

interface Paired {
  baselineMs: number;
  commandMs: number;
  ratios: number[];
}

async function paired(args: string[], pairs: number, ready?: RegExp): Promise<Paired> {
  const baseline: number[] = [];
  const command: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < WARMUP_PAIRS + pairs; i++) {
    // Alternate which goes first, so neither always runs on a cache the other warmed.
    let b: number, c: number;
    if (i % 2 === 0) {
      b = await run(['-e', '0']);
      c = await run(args, ready);
    } else {
      c = await run(args, ready);
      b = await run(['-e', '0']);
    }
    if (i < WARMUP_PAIRS) continue;
    baseline.push(b);
    command.push(c);
    ratios.push(c / b);
  }
  return { baselineMs: median(baseline), commandMs: median(command), ratios };
}

export async function startupBench(): Promise<void> {
  console.log(`\n## startup: whole processes of dist/cli/bin.js against node -e 0 (${PAIRS} pairs; ${SERVER_PAIRS} for --server)\n`);
  const server = await startMist({ name: 'mist for ping' });
  const rows: Array<{ name: string; target?: number } & Paired> = [];
  try {
    rows.push({ name: 'mist --version', target: 1.8, ...(await paired([MIST_BIN, '--version'], PAIRS)) });
    rows.push({ name: 'mist ping (server running)', target: 2.5, ...(await paired([MIST_BIN, 'ping', '--host', `127.0.0.1:${server.port}`], PAIRS)) });
  } finally {
    await server.stop();
  }
  const listeners = 'tcp://127.0.0.1:0,ws://127.0.0.1:0,http://127.0.0.1:0';
  rows.push({ name: 'mist --server, until ready', ...(await paired([MIST_BIN, '--server', '--listeners', listeners], SERVER_PAIRS, /mist is ready/)) });

  table(
    ['command', 'node -e 0 ms', 'command ms', '× node -e 0 (median)', 'min–max', 'target'],
    rows.map((r) => [
      r.name,
      fmt(r.baselineMs),
      fmt(r.commandMs),
      fmt(median(r.ratios)),
      `${fmt(Math.min(...r.ratios))}–${fmt(Math.max(...r.ratios))}`,
      r.target ? `≤ ${r.target}×` : '',
    ]),
  );
  for (const r of rows) {
    if (r.target) verdict(`${r.name} within ${r.target}× of node -e 0`, median(r.ratios) <= r.target, `${fmt(median(r.ratios))}× (median of ${r.ratios.length} pairs)`);
  }
}
