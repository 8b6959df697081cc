/**
 * `npm run bench [-- matcher|fanout|connections|cluster|isolation|jwt|startup|history|profile|writes …]`: runs the selected
 * benchmarks (all but `profile` and `writes` by default), each printing its tables and a PASS/FAIL
 * (or BLOCKED: not measurable on this machine) line per target, then a
 * summary of every verdict. `profile` and `writes` are tools, with no
 * verdicts: where a delivery's time goes (bench/profile.ts), what a write
 * costs by the way it is made (bench/writes.ts).
 */
import { formatVerdict, verdicts } from './lib.ts';

const BENCHES: Record<string, () => Promise<void>> = {
  matcher: async () => (await import('./matcher.ts')).matcherBench(),
  fanout: async () => (await import('./fanout.ts')).fanoutBench(),
  connections: async () => (await import('./connections.ts')).connectionsBench(),
  cluster: async () => (await import('./cluster.ts')).clusterBench(),
  isolation: async () => (await import('./isolation.ts')).isolationBench(),
  jwt: async () => (await import('./jwt.ts')).jwtBench(),
  startup: async () => (await import('./startup.ts')).startupBench(),
  history: async () => (await import('./history.ts')).historyBench(),
  profile: async () => (await import('./profile.ts')).profileBench(),
  writes: async () => (await import('./writes.ts')).writesBench(),
};
/** Run only when named: tools without verdicts. */
const ON_REQUEST = new Set(['profile', 'writes']);

const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
for (const name of wanted) {
  if (!BENCHES[name]) {
    console.error(`unknown bench "${name}" (known: ${Object.keys(BENCHES).join(', ')})`);
    process.exit(2);
  }
}
const selected = wanted.length > 0 ? wanted : Object.keys(BENCHES).filter((name) => !ON_REQUEST.has(name));
console.log(`# mist benchmarks — ${new Date().toISOString()}, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
for (const name of selected) await BENCHES[name]!();

console.log('\n## summary\n');
for (const v of verdicts) console.log(formatVerdict(v));
process.exit(0);
