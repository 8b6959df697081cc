/** Crafted subscriptions that make one publish's match take many slices (test/slices.test.ts, test/resume.test.ts). */
import { seededRandom } from './prng.ts';

/** A 64-tag message; 24-tag subsets of it match it, each down a path of its own in the trie. */
export const MESSAGE = Array.from({ length: 64 }, (_, i) => `m${i}`);

/** `count` distinct random 24-tag subsets of {@link MESSAGE}, sorted. */
export function subsetsOfMessage(seed: number, count: number): string[][] {
  const rand = seededRandom(seed);
  const sets = new Map<string, string[]>();
  while (sets.size < count) {
    const tags = new Set<string>();
    while (tags.size < 24) tags.add(MESSAGE[Math.floor(rand() * MESSAGE.length)]!);
    const sorted = [...tags].sort();
    sets.set(sorted.join(), sorted);
  }
  return [...sets.values()];
}
