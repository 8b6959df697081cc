/**
 * JWT auth: what an `auth` with a signed token costs against one with a
 * memory-store token, timed in process on `Auth.identify` — the step that
 * differs; the transport's part is the same for both. HS256 and ES256, each
 * over distinct tokens as many browsers would bring: one at a time
 * (latency), and all at once (a burst of reconnecting browsers: wall time,
 * and CPU time of the whole process, WebCrypto's worker threads included).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { Auth } from '../core/auth.ts';
import type { Authenticator } from '../core/authenticator.ts';
import { createLogger } from '../core/logger.ts';
import { JwtAuthenticator } from '../plugins/authenticators/jwt.ts';
import { MemoryAuthenticator } from '../plugins/authenticators/memory.authenticator.ts';
import { fmt, median, table } from './lib.ts';

/** Distinct tokens per store: a burst of this many browsers. */
const TOKENS = 2000;
const ROUNDS = 5;
/** A burst of reconnecting browsers, to price. */
const BROWSERS = 10_000;

interface Measured {
  name: string;
  /** µs per identify, one at a time. */
  sequential: number;
  /** Identifies per second of wall time, all at once. */
  burstRate: number;
  /** CPU µs per identify, all at once. */
  burstCpu: number;
}

async function measure(name: string, store: Authenticator, tokens: string[]): Promise<Measured> {
  const auth = new Auth();
  auth.enable(store, 'bench-admin-token');
  const sequential: number[] = [];
  const rates: number[] = [];
  const cpus: number[] = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    let start = performance.now();
    for (const token of tokens) if (!(await auth.identify(token))) throw new Error(`${name}: a token was refused`);
    const oneByOne = ((performance.now() - start) * 1000) / tokens.length;

    const cpu = process.cpuUsage();
    start = performance.now();
    const identities = await Promise.all(tokens.map((token) => auth.identify(token)));
    const wall = performance.now() - start;
    const used = process.cpuUsage(cpu);
    if (identities.some((identity) => !identity)) throw new Error(`${name}: a token was refused`);
    // The first round warms up: it is not counted.
    if (round === 0) continue;
    sequential.push(oneByOne);
    rates.push(tokens.length / (wall / 1000));
    cpus.push((used.user + used.system) / tokens.length);
  }
  await auth.close();
  return { name, sequential: median(sequential), burstRate: median(rates), burstCpu: median(cpus) };
}

function mint(key: CryptoKey | Uint8Array, alg: string, index: number): Promise<string> {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return new SignJWT({ tags: [`user-${index}`, 'news'], exp }).setProtectedHeader({ alg }).sign(key);
}

export async function jwtBench(): Promise<void> {
  console.log(`\n## jwt: Auth.identify, in process, ${TOKENS} distinct tokens (median of ${ROUNDS} rounds)\n`);
  const logger = createLogger('FATAL');
  const indexes = Array.from({ length: TOKENS }, (_, i) => i);

  const memory = new MemoryAuthenticator();
  const plain = indexes.map((i) => `token-${i}-${Math.random().toString(36).slice(2)}`);
  for (const [i, token] of plain.entries()) await memory.addToken(token, [`user-${i}`, 'news']);

  const secretEnv = 'MIST_BENCH_JWT_SECRET';
  process.env[secretEnv] = 'bench-only-hs256-secret-of-more-than-32-bytes';
  const hs256 = await JwtAuthenticator.open(new URL(`jwt://?secret-env=${secretEnv}`), logger);
  const secret = new TextEncoder().encode(process.env[secretEnv]);
  const hsTokens = await Promise.all(indexes.map((i) => mint(secret, 'HS256', i)));

  const dir = mkdtempSync(join(tmpdir(), 'mist-bench-jwt-'));
  const pair = await generateKeyPair('ES256');
  writeFileSync(join(dir, 'key.pem'), await exportSPKI(pair.publicKey));
  const es256 = await JwtAuthenticator.open(new URL(`jwt://?public-key=${encodeURIComponent(join(dir, 'key.pem'))}`), logger);
  const esTokens = await Promise.all(indexes.map((i) => mint(pair.privateKey, 'ES256', i)));

  const results = [
    await measure('memory://', memory, plain),
    await measure('jwt:// HS256', hs256, hsTokens),
    await measure('jwt:// ES256', es256, esTokens),
  ];
  rmSync(dir, { recursive: true, force: true });

  const base = results[0]!;
  table(
    ['store', 'one at a time µs', '× memory', 'burst auths/s', 'burst CPU µs/auth', '× memory', `CPU for ${fmt(BROWSERS)} browsers`],
    results.map((r) => [
      r.name,
      fmt(r.sequential),
      fmt(r.sequential / base.sequential),
      fmt(r.burstRate),
      fmt(r.burstCpu),
      fmt(r.burstCpu / base.burstCpu),
      `${fmt((r.burstCpu * BROWSERS) / 1e6)} s`,
    ]),
  );
  // No target was set for this cost: the figures are for pricing, not a verdict.
  for (const r of results.slice(1)) {
    const seconds = BROWSERS / r.burstRate;
    const cpu = fmt(r.burstCpu / base.burstCpu);
    console.log(`${r.name}: ${fmt(BROWSERS)} browsers reconnecting at once are authenticated in about ${fmt(seconds)} s (${cpu}× the CPU of memory://)`);
  }
}
