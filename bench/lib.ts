/**
 * Shared bench helpers: servers under test as child processes (so their CPU
 * and memory are theirs alone, read from /proc), free ports, tables and
 * verdicts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** This checkout's compiled executable: `npm run bench` builds it first. */
export const MIST_BIN = join(ROOT, 'dist/cli/bin.js');

/** A checkout's mist executable: the compiled one, or `bin/mist.js` in a checkout from before mist was compiled (a baseline). */
function mistBin(root: string): string {
  const compiled = join(root, 'dist/cli/bin.js');
  return root === ROOT || existsSync(compiled) ? compiled : join(root, 'bin/mist.js');
}
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux everywhere that matters). */
const CLK_TCK = 100;

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** CPU seconds a process has used so far in user space and in the kernel (its syscalls, and on loopback the receivers' TCP path they run). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
}

/** Read and write syscalls a process has made so far (/proc/<pid>/io). */
export function syscalls(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { reads: Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0), writes: Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0) };
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

export interface ServerUnderTest {
  readonly name: string;
  readonly kind: 'mist' | 'redis' | 'nats';
  /** The TCP port its clients (and mist's publishers) use. */
  readonly port: number;
  /** mist started with `web`: the ports of its ws:// and http:// listeners. */
  readonly web?: { ws: number; http: number };
  readonly pid: number;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
}

/** This process's fd limits (soft, hard), from /proc/self/limits. */
export function fdLimits(): { soft: number; hard: number } {
  const line = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  const value = (text: string | undefined) => (text === undefined || text === 'unlimited' ? Infinity : Number(text));
  return { soft: value(line?.[1]), hard: value(line?.[2]) };
}

/**
 * Runs a child process with its fd limit raised to `nofile` (not anything
 * else's): through prlimit, which sets the limit and then execs the command,
 * so the child's pid is the command's own.
 */
function prlimitArgs(nofile: number | undefined, command: string, args: string[]): [string, string[]] {
  if (!nofile || fdLimits().soft >= nofile) return [command, args];
  return ['prlimit', [`--nofile=${nofile}:${nofile}`, command, ...args]];
}

/**
 * Starts the compiled server (`node dist/cli/bin.js --server`, as users run it) on a free port, with `limits` written to
 * a config file, and resolves once it says it is listening. `config` adds
 * other config keys (`authenticator`, `token`…); `extraListeners` adds
 * listeners after the TCP one on `port` (the one waited for); `web` adds a
 * ws:// and an http:// listener on free ports. `root` runs another checkout
 * of mist (a baseline to compare with in the same run).
 */
export async function startMist(
  options: {
    name?: string;
    limits?: Record<string, unknown>;
    nofile?: number;
    nodeArgs?: string[];
    config?: Record<string, unknown>;
    extraListeners?: string[];
    web?: boolean;
    root?: string;
  } = {},
): Promise<ServerUnderTest> {
  const port = await freePort();
  const web = options.web ? { ws: await freePort(), http: await freePort() } : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'mist-bench-'));
  const config = join(dir, 'mist.config.json');
  const listeners = [`tcp://127.0.0.1:${port}`, ...(options.extraListeners ?? [])];
  if (web) listeners.push(`ws://127.0.0.1:${web.ws}`, `http://127.0.0.1:${web.http}`);
  writeFileSync(config, JSON.stringify({ ...options.config, listeners, logLevel: 'WARN', limits: options.limits ?? {} }));
  const bin = mistBin(options.root ?? ROOT);
  const [command, args] = prlimitArgs(options.nofile, process.execPath, [...(options.nodeArgs ?? []), bin, '--server', '--config', config]);
  const server = await launch(options.name ?? 'mist', 'mist', port, command, args, { cwd: dir, alsoWaitFor: web ? [web.ws, web.http] : [] });
  return { ...server, web };
}

/** Starts bench/relay.mjs, a plain Node relay speaking enough of mist's protocol for the load generator. */
export async function startRelay(): Promise<ServerUnderTest> {
  const port = await freePort();
  return launch('plain Node relay', 'mist', port, process.execPath, [join(ROOT, 'bench/relay.mjs'), String(port)]);
}

/** Starts a throw-away redis-server (no persistence) on a free port. */
export async function startRedis(options: { nofile?: number } = {}): Promise<ServerUnderTest> {
  const port = await freePort();
  const redisArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--protected-mode', 'no'];
  if (options.nofile) redisArgs.push('--maxclients', String(options.nofile - 64));
  const [command, args] = prlimitArgs(options.nofile, 'redis-server', redisArgs);
  return launch('redis-server', 'redis', port, command, args);
}

/** Starts a throw-away nats-server (no JetStream, no monitoring, log discarded) on a free port. */
export async function startNats(): Promise<ServerUnderTest> {
  const port = await freePort();
  return launch('nats-server', 'nats', port, NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-l', '/dev/null']);
}

/** The Debian package's path (not on a user's PATH there). */
const NATS_SERVER = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';

/** Runs a server's command (stdout discarded) and resolves once it listens on `port` (and on `alsoWaitFor`). */
async function launch(
  name: string,
  kind: ServerUnderTest['kind'],
  port: number,
  command: string,
  args: string[],
  options: { cwd?: string; alsoWaitFor?: number[] } = {},
): Promise<ServerUnderTest> {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.resume();
  for (const each of [port, ...(options.alsoWaitFor ?? [])]) await waitForPort(each, child);
  // prlimit execs the command, so the pid is the server's own.
  return { name, kind, port, pid: child.pid!, stop: stopper(child) };
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server not listening on ${port} after 20 s`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints an aligned table. */
export function table(headers: string[], rows: Array<Array<string | number>>): void {
  const cells = rows.map((row) => row.map(String));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => '| ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(line(headers));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const row of cells) console.log(line(row));
}

export interface Verdict {
  target: string;
  /** BLOCKED: this machine cannot measure the target at all (a limit it will not let the bench raise). */
  status: 'PASS' | 'FAIL' | 'BLOCKED';
  detail: string;
}

/** Verdicts of every bench run in this process, printed together at the end. */
export const verdicts: Verdict[] = [];

export function verdict(target: string, pass: boolean, detail: string): void {
  record({ target, status: pass ? 'PASS' : 'FAIL', detail });
}

/** A target this machine cannot measure; `detail` says why and what was measured instead. */
export function blocked(target: string, detail: string): void {
  record({ target, status: 'BLOCKED', detail });
}

function record(v: Verdict): void {
  verdicts.push(v);
  console.log(formatVerdict(v));
}

export function formatVerdict(v: Verdict): string {
  return `${v.status.padEnd(7)} ${v.target} — ${v.detail}`;
}

/** A number with `digits` significant figures. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return Number(value.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
