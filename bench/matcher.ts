/**
 * Matcher: the time to match one message against N subscriptions, against
 * the original's algorithm (every connection's every subscription checked in
 * turn) measured in the same run; 64-tag messages; add/remove; and the
 * crafted cases docs/architecture.md discusses.
 */
import { SubscriptionIndex } from '../core/matcher.ts';
import { seededRandom as random } from '../test/helpers/prng.ts';
import { fmt, median, table, verdict } from './lib.ts';

const VOCABULARY = 10_000;
const SUBS_PER_HOLDER = 10;
/** Rounds of 20k adds and removes run before the 3 that are timed. */
const ADD_REMOVE_WARMUP = 2;

/** A connection, as the matcher sees it: something to deliver to once per message. */
interface Holder {
  stamp: number;
  subscriptions: string[][];
}

function pick(rand: () => number, count: number, vocabulary = VOCABULARY): string[] {
  const tags = new Set<string>();
  while (tags.size < count) tags.add(`t${Math.floor(rand() * vocabulary)}`);
  return [...tags];
}

/** The original's algorithm: every connection, every subscription, every tag. */
function baselineMatch(holders: readonly Holder[], message: readonly string[], stamp: number): number {
  const carried = new Set(message);
  let delivered = 0;
  for (const holder of holders) {
    for (const sub of holder.subscriptions) {
      let all = true;
      for (const tag of sub) {
        if (!carried.has(tag)) {
          all = false;
          break;
        }
      }
      if (all) {
        holder.stamp = stamp;
        delivered++;
        break;
      }
    }
  }
  return delivered;
}

/** A matcher with a broker-like visitor that delivers once per holder by stamp. */
class Indexed {
  readonly index = new SubscriptionIndex<Holder>();
  private stamp = 0;
  delivered = 0;
  private readonly visit = (holder: Holder): void => {
    if (holder.stamp === this.stamp) return;
    holder.stamp = this.stamp;
    this.delivered++;
  };

  match(message: readonly string[]): number {
    this.stamp++;
    this.delivered = 0;
    this.index.match(message, this.visit);
    return this.delivered;
  }
}

/**
 * CPU time of this process in ms (every thread: GC included). Timed by CPU,
 * not by the wall clock, so other processes on a shared machine inflate it
 * far less; the bench runs nothing else meanwhile.
 */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Mean CPU µs per call of `fn` over `messages`, repeated until at least `minMs` have passed; median of 3 rounds. */
function timePerCall(messages: readonly string[][], fn: (message: readonly string[]) => number, minMs = 300): number {
  const rounds: number[] = [];
  let sink = 0;
  for (let round = 0; round < 3; round++) {
    let calls = 0;
    const start = cpuNow();
    let elapsed = 0;
    do {
      for (const message of messages) sink += fn(message);
      calls += messages.length;
      elapsed = cpuNow() - start;
    } while (elapsed < minMs);
    rounds.push((elapsed * 1000) / calls);
  }
  if (sink < 0) console.log(sink);
  return median(rounds);
}

export async function matcherBench(): Promise<void> {
  console.log(`\n## matcher — one message of 8 tags against N subscriptions of 1–4 tags from a ${VOCABULARY}-tag vocabulary\n`);
  const sizes = [1_000, 10_000, 100_000, 1_000_000];
  const rows: Array<Array<string | number>> = [];
  const perSize = new Map<number, { matched: number; indexed: number; baseline: number; wide: number; add: number; remove: number }>();
  for (const size of sizes) {
    const rand = random(size);
    const holders: Holder[] = [];
    const indexed = new Indexed();
    for (let i = 0; i < size; i++) {
      if (i % SUBS_PER_HOLDER === 0) holders.push({ stamp: 0, subscriptions: [] });
      const holder = holders[holders.length - 1]!;
      const tags = pick(rand, 1 + Math.floor(rand() * 4));
      holder.subscriptions.push(tags);
      indexed.index.add(tags, holder);
    }
    const messages = Array.from({ length: 1000 }, () => pick(rand, 8));
    const wide = Array.from({ length: 200 }, () => pick(rand, 64));
    // Same answers, or the timing means nothing.
    let stamp = 1e9;
    for (const message of messages.slice(0, 50)) {
      const a = indexed.match(message);
      const b = baselineMatch(holders, message, ++stamp);
      if (a !== b) throw new Error(`matcher and baseline disagree at ${size}: ${a} vs ${b}`);
    }
    const matched = messages.reduce((sum, m) => sum + indexed.match(m), 0) / messages.length;
    const indexedUs = timePerCall(messages, (m) => indexed.match(m));
    const baselineUs = timePerCall(size >= 1_000_000 ? messages.slice(0, 20) : size >= 100_000 ? messages.slice(0, 100) : messages, (m) => baselineMatch(holders, m, ++stamp), 500);
    const wideUs = timePerCall(wide, (m) => indexed.match(m));

    // Add and remove: fresh subscriptions on a fresh holder, then removed again. The first
    // rounds run while V8 is still compiling add/remove and growing its young generation
    // (4–6 µs, falling each round), so they are a warm-up and the median of the last 3 counts.
    const newcomer: Holder = { stamp: 0, subscriptions: [] };
    const fresh = Array.from({ length: 20_000 }, () => pick(rand, 1 + Math.floor(rand() * 4)));
    const adds: number[] = [];
    const removes: number[] = [];
    for (let round = 0; round < ADD_REMOVE_WARMUP + 3; round++) {
      let start = cpuNow();
      for (const tags of fresh) indexed.index.add(tags, newcomer);
      const addUs = ((cpuNow() - start) * 1000) / fresh.length;
      start = cpuNow();
      for (const tags of fresh) indexed.index.remove(tags, newcomer);
      const removeUs = ((cpuNow() - start) * 1000) / fresh.length;
      if (round < ADD_REMOVE_WARMUP) continue;
      adds.push(addUs);
      removes.push(removeUs);
    }
    const addUs = median(adds);
    const removeUs = median(removes);

    perSize.set(size, { matched, indexed: indexedUs, baseline: baselineUs, wide: wideUs, add: addUs, remove: removeUs });
    rows.push([size.toLocaleString('en-US'), fmt(matched), fmt(indexedUs), fmt(baselineUs), `${fmt(baselineUs / indexedUs)}×`, fmt(wideUs), fmt(addUs), fmt(removeUs)]);
    console.log(`  measured ${size.toLocaleString('en-US')} subscriptions`);
  }
  console.log('');
  table(['subscriptions', 'holders matched', 'match µs', 'baseline µs (every connection)', 'speed-up', '64-tag message µs', 'add µs', 'remove µs'], rows);
  console.log('');

  // How slow this machine is right now: one small allocation-heavy operation, for scaling the figures above.
  const maps: Array<Map<number, object>> = [];
  const start = cpuNow();
  for (let i = 0; i < 200_000; i++) maps.push(new Map([[i, { i }]]));
  const calibration = ((cpuNow() - start) * 1000) / maps.length;
  console.log(`calibration: new Map() with one entry costs ${fmt(calibration)} µs of CPU here (well under half a microsecond on an idle machine; compare across runs)\n`);

  const small = perSize.get(1_000)!;
  const large = perSize.get(1_000_000)!;
  const mid = perSize.get(100_000)!;
  // The message's matches grow with the subscriptions (a fixed vocabulary), and each is a holder to visit: the detail shows both.
  verdict(
    'matcher: 1M subscriptions within 3× of 1k (8-tag message)',
    large.indexed <= 3 * small.indexed,
    `${fmt(large.indexed)} µs vs ${fmt(small.indexed)} µs (${fmt(large.indexed / small.indexed)}×), finding ${fmt(large.matched)} holders vs ${fmt(small.matched)} (${fmt(large.matched / small.matched)}×)`,
  );
  verdict('matcher: ≥ 100× the baseline at 100k subscriptions', mid.baseline / mid.indexed >= 100, `${fmt(mid.baseline / mid.indexed)}× (${fmt(mid.indexed)} µs vs ${fmt(mid.baseline)} µs)`);
  verdict('matcher: 64-tag messages do not blow up (1M subscriptions)', large.wide < 1000, `${fmt(large.wide)} µs per 64-tag message`);
  const worstAdd = Math.max(...[...perSize.values()].map((v) => Math.max(v.add, v.remove)));
  verdict('matcher: add and remove around a microsecond', worstAdd <= 3, `worst ${fmt(worstAdd)} µs (add/remove of 1–4 tags)`);

  crafted();
}

/** The crafted cases: subscriptions that share much with a message and miss it by one tag. */
function crafted(): void {
  console.log('\n### crafted near-miss cases (one 64-tag message)\n');
  const rand = random(64);
  const message = Array.from({ length: 64 }, (_, i) => `m${i}`);
  const cases: Array<{ name: string; count: number; build: (i: number) => string[] }> = [
    {
      name: '30k subs: 20 of the message’s tags + one unique tag',
      count: 30_000,
      build: (i) => [...pick(rand, 20, 64).map((t) => `m${t.slice(1)}`), `u${i}`],
    },
    {
      name: '30k subs: 20 of the message’s tags + one tag all of them share',
      count: 30_000,
      build: () => [...pick(rand, 20, 64).map((t) => `m${t.slice(1)}`), 'absent'],
    },
    {
      name: '100 holders × 1000 near-miss subs (3 message tags + 1 other) + 1 match each',
      count: 100_000,
      build: (i) => [`m${i % 7}`, `m${(i % 7) + 8}`, `m${(i % 5) + 20}`, `nm${i}`],
    },
  ];
  const rows: Array<Array<string | number>> = [];
  for (const c of cases) {
    const indexed = new Indexed();
    const holders = Array.from({ length: 100 }, () => ({ stamp: 0, subscriptions: [] as string[][] }));
    for (let i = 0; i < c.count; i++) {
      const holder = holders[i % holders.length]!;
      const tags = c.build(i);
      holder.subscriptions.push(tags);
      indexed.index.add(tags, holder);
    }
    for (const holder of holders) {
      holder.subscriptions.push(['m0']);
      indexed.index.add(['m0'], holder);
    }
    const us = timePerCall([message], (m) => indexed.match(m), 200);
    const baseline = timePerCall([message], (m) => baselineMatch(holders, m, Math.random()), 200);
    rows.push([c.name, c.count.toLocaleString('en-US'), fmt(us), fmt(baseline)]);
    if (c.count === 30_000) verdict(`matcher crafted: ${c.name}`, us < 100, `${fmt(us)} µs per publish (was 62 ms at 10k with the previous trie)`);
    else verdict(`matcher crafted: ${c.name}`, us < 50, `${fmt(us)} µs per publish`);
  }
  console.log('');
  table(['case', 'subscriptions', 'match µs', 'baseline µs'], rows);
}
