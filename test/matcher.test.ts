import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { SubscriptionIndex, tagSetHash } from '../core/matcher.ts';
import { seededRandom } from './helpers/prng.ts';

/**
 * The obviously-correct matcher the index is checked against: a plain list of
 * (holder, tag set) pairs, where a holder matches a message iff one of its
 * sets is a subset of the message's tags.
 */
class ReferenceMatcher<S> {
  private readonly pairs: { holder: S; tags: Set<string> }[] = [];

  add(tags: readonly string[], holder: S): boolean {
    if (this.indexOf(tags, holder) >= 0) return false;
    this.pairs.push({ holder, tags: new Set(tags) });
    return true;
  }

  remove(tags: readonly string[], holder: S): boolean {
    const at = this.indexOf(tags, holder);
    if (at < 0) return false;
    this.pairs.splice(at, 1);
    return true;
  }

  /** Distinct tag sets held by at least one holder. */
  get size(): number {
    return new Set(this.pairs.map((pair) => setKey(pair.tags))).size;
  }

  /** Every (holder, tags) pair currently held, in insertion order. */
  entries(): readonly { holder: S; tags: ReadonlySet<string> }[] {
    return this.pairs;
  }

  /** The holders with at least one set ⊆ `message`. */
  holdersMatching(message: readonly string[]): Set<S> {
    const carried = new Set(message);
    return new Set(this.pairs.filter((pair) => isSubset(pair.tags, carried)).map((pair) => pair.holder));
  }

  /** How many (holder, tag set) pairs have their set ⊆ `message`. */
  pairsMatching(message: readonly string[]): number {
    const carried = new Set(message);
    return this.pairs.filter((pair) => isSubset(pair.tags, carried)).length;
  }

  private indexOf(tags: readonly string[], holder: S): number {
    const key = setKey(new Set(tags));
    return this.pairs.findIndex((pair) => pair.holder === holder && setKey(pair.tags) === key);
  }
}

function isSubset(small: ReadonlySet<string>, big: ReadonlySet<string>): boolean {
  for (const tag of small) if (!big.has(tag)) return false;
  return true;
}

function setKey(tags: Iterable<string>): string {
  return JSON.stringify([...new Set(tags)].sort());
}

interface MatchResult<S> {
  /** Every holder visited, deduplicated. */
  holders: Set<S>;
  /** Each holder `visit` was called with, in call order: once per matching subscription it holds. */
  visits: S[];
}

function matchAll<S>(index: SubscriptionIndex<S>, message: readonly string[]): MatchResult<S> {
  const visits: S[] = [];
  index.match(message, (holder) => visits.push(holder));
  return { holders: new Set(visits), visits };
}

function receivers<S>(index: SubscriptionIndex<S>, message: readonly string[]): S[] {
  return [...matchAll(index, message).holders];
}

/**
 * Matches `message` on both matchers and throws unless they agree, each
 * subscription's holder set is visited at most once, and there is one visit
 * per distinct matching subscription. Throwing (rather than ava assertions)
 * lets fast-check shrink a failure to a minimal workload.
 */
function checkMatch<S>(index: SubscriptionIndex<S>, reference: ReferenceMatcher<S>, message: readonly string[]): void {
  const { holders, visits } = matchAll(index, message);
  const shown = JSON.stringify(message);
  assert.deepEqual(sortedList(holders), sortedList(reference.holdersMatching(message)), `holders matching ${shown}`);
  assert.equal(visits.length, reference.pairsMatching(message), `one visit per holder per matching subscription for ${shown}`);
}

function sortedList<S>(items: Iterable<S>): S[] {
  return [...items].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
}

/** Every subset of `tags`, the empty set included. */
function powerSet(tags: readonly string[]): string[][] {
  return Array.from({ length: 2 ** tags.length }, (_, bits) => tags.filter((_, i) => bits & (1 << i)));
}

// --- Property tests against the reference -----------------------------------

const VOCABULARY = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
/** Tags no subscription ever uses, to appear in messages and removals. */
const STRANGERS = ['y', 'z'];
const HOLDERS = ['p', 'q', 'r'];

type Operation =
  | { kind: 'add'; holder: string; tags: string[] }
  | { kind: 'remove'; holder: string; tags: string[] }
  /** Removes the `pick`-th pair the reference holds (modulo their number), spelled differently from its add. */
  | { kind: 'removeHeld'; pick: number; duplicate: boolean }
  /** Removes every pair held, one by one, so every branch is pruned and every tag id freed. */
  | { kind: 'removeAll' };

type Step = { operation: Operation; probes: string[][] };

function operationArbitrary(vocabulary: readonly string[], maxTags: number): fc.Arbitrary<Operation> {
  const holder = fc.constantFrom(...HOLDERS);
  // Duplicates allowed: ["b","a","a"] is {a,b}.
  const tags = fc.array(fc.constantFrom(...vocabulary), { minLength: 1, maxLength: maxTags });
  const removable = fc.array(fc.constantFrom(...vocabulary, ...STRANGERS), { minLength: 1, maxLength: maxTags });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), holder, tags }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), holder, tags: removable }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('removeHeld' as const), pick: fc.nat(), duplicate: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'removeAll' as const }) },
  );
}

function messageArbitrary(vocabulary: readonly string[], maxLength: number): fc.Arbitrary<string[]> {
  return fc.array(fc.constantFrom(...vocabulary, ...STRANGERS), { maxLength });
}

function stepsArbitrary(vocabulary: readonly string[], maxTags: number): fc.Arbitrary<Step[]> {
  const message = messageArbitrary(vocabulary, vocabulary.length + 4);
  return fc.array(
    fc.record({
      operation: operationArbitrary(vocabulary, maxTags),
      probes: fc.array(message, { minLength: 1, maxLength: 3 }),
    }),
    { minLength: 1, maxLength: 40 },
  );
}

/** Applies one operation to both matchers; throws when they disagree. */
function apply(index: SubscriptionIndex<string>, reference: ReferenceMatcher<string>, operation: Operation): void {
  switch (operation.kind) {
    case 'add':
      assert.equal(
        index.add(operation.tags, operation.holder),
        reference.add(operation.tags, operation.holder),
        'add result',
      );
      return;
    case 'remove':
      assert.equal(
        index.remove(operation.tags, operation.holder),
        reference.remove(operation.tags, operation.holder),
        'remove result',
      );
      return;
    case 'removeHeld': {
      const held = reference.entries();
      if (held.length === 0) return;
      const { holder, tags } = held[operation.pick % held.length]!;
      // Reversed, maybe with a duplicate: the same set, spelled differently.
      const spelled = [...tags].reverse();
      if (operation.duplicate) spelled.push(spelled[0]!);
      reference.remove(spelled, holder);
      assert.equal(index.remove(spelled, holder), true, 'removing a held set');
      assert.equal(index.remove(spelled, holder), false, 'removing it twice');
      return;
    }
    case 'removeAll': {
      for (const { holder, tags } of [...reference.entries()]) {
        reference.remove([...tags], holder);
        assert.equal(index.remove([...tags], holder), true, 'removing a held set');
      }
      assert.equal(index.size, 0, 'size after removing everything');
      return;
    }
  }
}

function runWorkload(vocabulary: readonly string[], steps: readonly Step[], exhaustive: boolean): void {
  const index = new SubscriptionIndex<string>();
  const reference = new ReferenceMatcher<string>();
  for (const { operation, probes } of steps) {
    apply(index, reference, operation);
    assert.equal(index.size, reference.size, 'size');
    for (const probe of probes) checkMatch(index, reference, probe);
  }
  if (exhaustive) {
    for (const message of powerSet(vocabulary)) checkMatch(index, reference, message);
  }
}

test('matches exactly like the naive subset matcher over random add/remove workloads', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(stepsArbitrary(VOCABULARY, 4), (steps) => runWorkload(VOCABULARY, steps, true)),
      { numRuns: 2000 },
    ),
  );
});

test('matches exactly like the naive subset matcher with longer subscriptions over a wider vocabulary', (t) => {
  const wide = 'abcdefghijklmnop'.split('');
  t.notThrows(() =>
    fc.assert(
      fc.property(stepsArbitrary(wide, 8), (steps) => runWorkload(wide, steps, false)),
      { numRuns: 300 },
    ),
  );
});

test('holders are told apart by identity, not by shape', (t) => {
  const adds = fc.array(
    fc.record({ holder: fc.nat(3), tags: fc.array(fc.constantFrom(...VOCABULARY), { minLength: 1, maxLength: 3 }) }),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(adds, messageArbitrary(VOCABULARY, 8), (adds, message) => {
        const people = [{ id: 0 }, { id: 0 }, { id: 0 }, { id: 0 }];
        const index = new SubscriptionIndex<{ id: number }>();
        const reference = new ReferenceMatcher<{ id: number }>();
        for (const { holder, tags } of adds) {
          assert.equal(index.add(tags, people[holder]!), reference.add(tags, people[holder]!));
        }
        const got = matchAll(index, message).holders;
        const expected = reference.holdersMatching(message);
        assert.equal(got.size, expected.size);
        assert.ok([...expected].every((person) => got.has(person)));
      }),
      { numRuns: 300 },
    ),
  );
});

// --- Named examples ---------------------------------------------------------

test('subscriber holding {a,c} and {b,d} receives {a,b,d}', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a', 'c'], 'alice');
  index.add(['b', 'd'], 'alice');
  t.deepEqual(receivers(index, ['a', 'b', 'd']), ['alice']);
  t.is(matchAll(index, ['a', 'b', 'd']).visits.length, 1);
});

test('subscriber holding {a,c} and {b,d} is visited once per matching subscription', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a', 'c'], 'alice');
  index.add(['b', 'd'], 'alice');
  const { holders, visits } = matchAll(index, ['a', 'b', 'c', 'd']);
  t.deepEqual([...holders], ['alice']);
  t.is(visits.length, 2);
});

/** The matching examples of docs/protocol.md: subscribed → receives. */
const FISH = ['onefish', 'twofish', 'redfish'];
const FISH_MESSAGES = powerSet(FISH).filter((tags) => tags.length > 0);

function fishRow(subscribed: string[], receives: string[][]): void {
  const listed = receives.map((m) => JSON.stringify(m)).join(', ');
  test(`matching: subscribed to ${JSON.stringify(subscribed)} receives ${listed} and no message missing one of its tags`, (t) => {
    const index = new SubscriptionIndex<string>();
    index.add(subscribed, 'fisher');
    for (const message of receives) t.deepEqual(receivers(index, message), ['fisher'], JSON.stringify(message));
    for (const message of FISH_MESSAGES.filter((tags) => !subscribed.every((tag) => tags.includes(tag)))) {
      t.deepEqual(receivers(index, message), [], JSON.stringify(message));
    }
  });
}

fishRow(['onefish'], [['onefish'], ['onefish', 'twofish'], ['onefish', 'twofish', 'redfish']]);
fishRow(['onefish', 'twofish'], [['onefish', 'twofish'], ['onefish', 'twofish', 'redfish']]);
fishRow(['onefish', 'twofish', 'redfish'], [['onefish', 'twofish', 'redfish']]);

test('["b","a","a"] is the subscription {a,b}', (t) => {
  const index = new SubscriptionIndex<string>();
  t.true(index.add(['b', 'a', 'a'], 'alice'));
  t.false(index.add(['a', 'b'], 'alice'), 'the same set, spelled differently, is already held');
  t.is(index.size, 1);
  t.deepEqual(receivers(index, ['a', 'b']), ['alice']);
  t.deepEqual(receivers(index, ['a']), []);
  t.deepEqual(receivers(index, ['b', 'b']), []);
  t.true(index.remove(['a', 'b', 'b'], 'alice'));
  t.is(index.size, 0);
});

test('message tags repeated in the message still match once per subscription', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  index.add(['a', 'b'], 'bob');
  const { holders, visits } = matchAll(index, ['b', 'a', 'a', 'b', 'a']);
  t.deepEqual(sortedList(holders), ['alice', 'bob']);
  t.is(visits.length, 2);
});

test('a subscription larger than the message does not match', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a', 'b', 'c'], 'alice');
  t.deepEqual(receivers(index, ['a', 'b']), []);
  t.deepEqual(receivers(index, ['a', 'c', 'd']), []);
  t.deepEqual(receivers(index, ['d', 'c', 'b', 'a']), ['alice']);
});

test('a 64-tag message against many subscriptions finishes', (t) => {
  const random = seededRandom(0x5eed);
  const vocabulary = Array.from({ length: 500 }, (_, i) => `tag${i}`);
  const pick = () => vocabulary[Math.floor(random() * vocabulary.length)]!;
  const index = new SubscriptionIndex<number>();
  const reference = new ReferenceMatcher<number>();
  for (let i = 0; i < 20_000; i++) {
    const tags = Array.from({ length: 1 + Math.floor(random() * 4) }, pick);
    const holder = Math.floor(random() * 2_000);
    t.is(index.add(tags, holder), reference.add(tags, holder));
  }
  t.is(index.size, reference.size);
  // One message drawn at random, one built to contain many whole subscriptions.
  const messages = [Array.from({ length: 64 }, pick)];
  const dense = new Set<string>();
  for (const { tags } of reference.entries()) {
    if (dense.size + tags.size > 64) continue;
    for (const tag of tags) dense.add(tag);
  }
  messages.push([...dense]);
  for (const message of messages) {
    t.is(message.length, 64);
    const expected = reference.holdersMatching(message);
    t.true(expected.size > 0, 'the test message should match something');
    t.notThrows(() => checkMatch(index, reference, message));
  }
});

test('removing one of two holders keeps the other', (t) => {
  const index = new SubscriptionIndex<string>();
  t.true(index.add(['a', 'b'], 'alice'));
  t.true(index.add(['b', 'a'], 'bob'));
  t.is(index.size, 1, 'two holders of one set are one subscription');
  t.true(index.remove(['a', 'b'], 'alice'));
  t.is(index.size, 1);
  t.deepEqual(receivers(index, ['a', 'b', 'c']), ['bob']);
});

test('removing a set removes exactly that set, not its subsets or supersets', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  index.add(['a', 'b'], 'alice');
  index.add(['a', 'b', 'c'], 'alice');
  t.true(index.remove(['a', 'b'], 'alice'));
  t.is(index.size, 2);
  t.is(matchAll(index, ['a', 'b']).visits.length, 1, 'only {a} is left to match {a,b}');
  t.is(matchAll(index, ['a', 'b', 'c']).visits.length, 2, '{a} and {a,b,c} match {a,b,c}');
});

test('message tags no subscription uses match nothing', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  index.add(['b', 'c'], 'bob');
  let calls = 0;
  index.match(['x', 'y', 'z'], () => calls++);
  index.match(['c'], () => calls++);
  t.is(calls, 0);
});

test('an empty message matches nothing', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  let calls = 0;
  index.match([], () => calls++);
  t.is(calls, 0);
});

test('an empty index matches nothing and has size 0', (t) => {
  const index = new SubscriptionIndex<string>();
  t.is(index.size, 0);
  t.deepEqual(receivers(index, ['a', 'b']), []);
});

test('adding a set the holder already holds returns false and changes nothing', (t) => {
  const index = new SubscriptionIndex<string>();
  t.true(index.add(['a', 'b'], 'alice'));
  t.false(index.add(['a', 'b'], 'alice'));
  t.false(index.add(['b', 'a', 'b'], 'alice'));
  t.is(index.size, 1);
  t.is(matchAll(index, ['a', 'b']).visits.length, 1);
  t.true(index.remove(['a', 'b'], 'alice'), 'one remove undoes the repeated adds');
  t.is(index.size, 0);
});

test('removing a set not held returns false and changes nothing', (t) => {
  const index = new SubscriptionIndex<string>();
  t.false(index.remove(['a'], 'alice'), 'on an empty index');
  index.add(['a', 'b'], 'alice');
  t.false(index.remove(['a', 'b'], 'bob'), 'another holder');
  t.false(index.remove(['a'], 'alice'), 'a subset of a held set');
  t.false(index.remove(['a', 'b', 'c'], 'alice'), 'a superset of a held set');
  t.false(index.remove(['x'], 'alice'), 'a tag the index never saw');
  t.is(index.size, 1);
  t.deepEqual(receivers(index, ['a', 'b']), ['alice']);
  t.true(index.remove(['a', 'b'], 'alice'));
  t.false(index.remove(['a', 'b'], 'alice'), 'already removed');
});

test('a subscription removed by its last holder can be added again', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a', 'b', 'c'], 'alice');
  index.remove(['a', 'b', 'c'], 'alice');
  t.is(index.size, 0);
  t.deepEqual(receivers(index, ['a', 'b', 'c']), []);
  t.true(index.add(['c', 'b', 'a'], 'alice'));
  t.is(index.size, 1);
  t.deepEqual(receivers(index, ['a', 'b', 'c']), ['alice']);
});

test('a tag freed by pruning and reused by a new tag does not match the old tag', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['m'], 'alice');
  index.add(['n', 'o'], 'bob');
  index.remove(['m'], 'alice'); // frees the id of "m"
  index.add(['p', 'n'], 'carol'); // "p" may get that id, and sorts differently from "m"
  t.deepEqual(receivers(index, ['m']), []);
  t.deepEqual(receivers(index, ['m', 'n']), []);
  t.deepEqual(receivers(index, ['p', 'n']), ['carol']);
  t.deepEqual(receivers(index, ['n', 'o']), ['bob']);
  t.deepEqual(sortedList(receivers(index, ['n', 'o', 'p'])), ['bob', 'carol']);
});

test('a node with more children than the message has tags is still matched exactly', (t) => {
  const index = new SubscriptionIndex<number>();
  for (let i = 0; i < 100; i++) index.add(['hub', `leaf${i}`], i);
  t.deepEqual(receivers(index, ['hub', 'leaf7']), [7]);
  t.deepEqual(sortedList(receivers(index, ['leaf3', 'hub', 'leaf42', 'leaf99'])), [3, 42, 99]);
  t.deepEqual(receivers(index, ['leaf7']), []);
});

test('crafted near-misses match exactly: 20 of a 64-tag message’s tags plus one unique or one shared tag the message lacks', (t) => {
  const random = seededRandom(0xc0ffee);
  const message = Array.from({ length: 64 }, (_, i) => `m${i}`);
  const index = new SubscriptionIndex<number>();
  const reference = new ReferenceMatcher<number>();
  for (let i = 0; i < 2000; i++) {
    const tags = new Set<string>();
    while (tags.size < 20) tags.add(message[Math.floor(random() * 64)]!);
    const extra = i % 2 === 0 ? `unique${i}` : 'absent';
    index.add([...tags, extra], i);
    reference.add([...tags, extra], i);
    // Every tenth also holds its near-miss without the extra tag: a real match under the same prefix.
    if (i % 10 === 0) {
      index.add([...tags], i);
      reference.add([...tags], i);
    }
  }
  t.notThrows(() => checkMatch(index, reference, message));
  t.notThrows(() => checkMatch(index, reference, [...message, 'absent']));
  t.notThrows(() => checkMatch(index, reference, [...message.slice(0, 40), 'absent', 'unique4']));
});

test('a subscription ending where a longer one passed, or lacking its tag, still matches (sentinels are only ever cleared)', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a', 'b', 'x'], 'alice');
  t.deepEqual(receivers(index, ['a', 'b']), []);
  index.add(['a', 'b'], 'bob');
  t.deepEqual(receivers(index, ['a', 'b']), ['bob']);
  index.add(['a', 'b', 'y'], 'carol');
  t.deepEqual(sortedList(receivers(index, ['a', 'b', 'y'])), ['bob', 'carol']);
  t.true(index.remove(['a', 'b'], 'bob'));
  t.deepEqual(receivers(index, ['a', 'b', 'y']), ['carol']);
  t.deepEqual(receivers(index, ['a', 'b', 'x']), ['alice']);
});

test('a visitor that removes subscriptions mid-walk (a slow consumer closed) does not break the walk', (t) => {
  const index = new SubscriptionIndex<string>();
  const held: Record<string, string[][]> = { alice: [['a'], ['a', 'b'], ['b', 'c']], bob: [['a', 'c']], carol: [['c']] };
  for (const [holder, sets] of Object.entries(held)) for (const tags of sets) index.add(tags, holder);
  const seen = new Set<string>();
  index.match(['a', 'b', 'c'], (holder) => {
    seen.add(holder);
    if (holder === 'alice') for (const tags of held.alice!) index.remove(tags, 'alice');
  });
  t.true(seen.has('alice'));
  t.true(seen.has('bob') && seen.has('carol'), 'the others were still visited');
  t.deepEqual(sortedList(receivers(index, ['a', 'b', 'c'])), ['bob', 'carol']);
  t.is(index.size, 2);
});

test('a visitor removing siblings of the node being walked, in the child array or the Map, still sees every other subscription', (t) => {
  for (const siblings of [6, 40]) {
    const index = new SubscriptionIndex<number>();
    for (let i = 0; i < siblings; i++) index.add([`t${i}`], i);
    const message = Array.from({ length: siblings }, (_, i) => `t${i}`);
    const removed = new Set<number>();
    const seen = new Set<number>();
    index.match(message, (holder) => {
      seen.add(holder);
      // The first holder visited drops itself and two others, wherever they sit among the root's children.
      if (removed.size === 0) {
        for (const gone of [holder, (holder + 1) % siblings, (holder + 3) % siblings]) {
          removed.add(gone);
          index.remove([`t${gone}`], gone);
        }
      }
    });
    const kept = Array.from({ length: siblings }, (_, i) => i).filter((i) => !removed.has(i));
    t.deepEqual(sortedList(kept.filter((i) => seen.has(i))), sortedList(kept), `${siblings} siblings: every kept subscription visited`);
    t.deepEqual(sortedList(receivers(index, message)), sortedList(kept), `${siblings} siblings: the removed ones are gone afterwards`);
    t.is(index.size, kept.length);
  }
});

test('a tag freed by a removal during a match is not reused by an add in the same match, while its emptied branch is still attached', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  index.add(['b'], 'bob');
  index.match(['a', 'b'], (holder) => {
    if (holder !== 'alice') return;
    index.remove(['a'], 'alice');
    // Were 'a''s id handed to 'c' now, 'c' would be filed under the emptied branch of 'a'.
    index.add(['c'], 'carol');
  });
  t.deepEqual(receivers(index, ['a']), []);
  t.deepEqual(receivers(index, ['c']), ['carol']);
  t.deepEqual(sortedList(receivers(index, ['a', 'b', 'c'])), ['bob', 'carol']);
});

test('random removals and adds by the visitor mid-match leave the index agreeing with the naive matcher', (t) => {
  const wide = 'abcdefghijklmnop'.split('');
  const readds = fc.array(fc.array(fc.constantFrom(...wide.slice(0, 6)), { minLength: 1, maxLength: 3 }), { maxLength: 8 });
  t.notThrows(() =>
    fc.assert(
      fc.property(stepsArbitrary(wide, 3), messageArbitrary(wide, 12), fc.array(fc.boolean(), { maxLength: 64 }), readds, (steps, message, drops, adds) => {
        const index = new SubscriptionIndex<string>();
        const reference = new ReferenceMatcher<string>();
        for (const { operation } of steps) apply(index, reference, operation);
        // Each visit may drop every subscription its holder has (a slow consumer closed).
        const dropped = new Set<string>();
        const visited = new Set<string>();
        let visit = 0;
        index.match(message, (holder) => {
          visited.add(holder);
          if (!drops[visit++ % Math.max(1, drops.length)] || dropped.has(holder)) return;
          dropped.add(holder);
          for (const { tags } of reference.entries().filter((pair) => pair.holder === holder)) {
            reference.remove([...tags], holder);
            assert.equal(index.remove([...tags], holder), true, 'removing a held set mid-match');
          }
          // Then subscribes again, maybe down the branches it just emptied.
          const again = adds.shift();
          if (again) apply(index, reference, { kind: 'add', holder, tags: again });
        });
        for (const holder of reference.holdersMatching(message)) assert.ok(visited.has(holder), `${holder} was visited`);
        assert.equal(index.size, reference.size, 'size');
        for (const probe of powerSet(wide.slice(0, 8))) checkMatch(index, reference, probe);
        checkMatch(index, reference, message);
        // The index still takes new subscriptions, possibly on freed ids.
        apply(index, reference, { kind: 'add', holder: 'p', tags: ['x1', 'x2'] });
        checkMatch(index, reference, ['x1', 'x2', ...message]);
      }),
      { numRuns: 500 },
    ),
  );
});

test('a match run in slices, with adds and removes between them, visits each subscription held throughout once and none never held', (t) => {
  const wide = 'abcdefghijkl'.split('');
  const adds = fc.array(
    fc.record({ holder: fc.constantFrom(...HOLDERS), tags: fc.array(fc.constantFrom(...wide), { minLength: 1, maxLength: 4 }) }),
    { minLength: 8, maxLength: 40 },
  );
  const between = fc.array(operationArbitrary(wide, 4), { maxLength: 20 });
  // Long messages and budgets of a step or two over a few dozen subscriptions: most matches pause, many times.
  const message = fc.array(fc.constantFrom(...wide, ...STRANGERS), { minLength: 4, maxLength: 14 });
  t.notThrows(() =>
    fc.assert(
      fc.property(adds, message, fc.integer({ min: 1, max: 2 }), between, (added, message, budget, operations) => {
        const index = new SubscriptionIndex<string>();
        const reference = new ReferenceMatcher<string>();
        for (const { holder, tags } of added) apply(index, reference, { kind: 'add', holder, tags });
        const carried = new Set(message);
        const matching = () => reference.entries().filter((pair) => isSubset(pair.tags, carried)).map((pair) => `${pair.holder} ${setKey(pair.tags)}`);
        // Subscriptions that match, held from the start to the end of the match; and those held at some moment of it.
        let throughout = new Set(matching());
        const ever = new Set(throughout);
        const visits: string[] = [];
        const visit = (holder: string) => visits.push(holder);
        const walk = index.start(message, visit, budget);
        let done = walk === undefined;
        for (let next = 0; !done; next++) {
          const operation = operations[next];
          if (operation) apply(index, reference, operation);
          const now = new Set(matching());
          throughout = new Set([...throughout].filter((pair) => now.has(pair)));
          for (const pair of now) ever.add(pair);
          done = index.resume(walk!, visit, budget);
        }
        for (const holder of HOLDERS) {
          const count = visits.filter((visited) => visited === holder).length;
          const least = [...throughout].filter((pair) => pair.startsWith(`${holder} `)).length;
          const most = [...ever].filter((pair) => pair.startsWith(`${holder} `)).length;
          assert.ok(least <= count && count <= most, `${holder}: ${count} visits, between ${least} and ${most} for ${JSON.stringify(message)}`);
        }
        assert.equal(index.size, reference.size, 'size');
        for (const probe of powerSet(wide.slice(0, 8))) checkMatch(index, reference, probe);
        checkMatch(index, reference, message);
      }),
      { numRuns: 1000 },
    ),
  );
});

test('a match paused by its budget goes on from where it stopped, each subscription visited once, while other matches run whole in between', (t) => {
  const index = new SubscriptionIndex<number>();
  const message = 'abcdefgh'.split('');
  const sets = powerSet(message).filter((tags) => tags.length > 0);
  sets.forEach((tags, i) => index.add(tags, i));
  const visits: number[] = [];
  const visit = (holder: number) => visits.push(holder);
  let slices = 1;
  const walk = index.start(message, visit, 10);
  if (!walk) return t.fail('not paused');
  let done = false;
  while (!done) {
    slices++;
    t.deepEqual(receivers(index, ['a', 'b']).sort(), [0, 1, 2], 'a match between its slices is whole and sees only its own tags');
    done = index.resume(walk, visit, 10);
  }
  t.true(slices > 10, `${slices} slices`);
  t.deepEqual(
    visits.sort((a, b) => a - b),
    sets.map((_, i) => i),
  );
  t.throws(() => index.resume(walk, visit, 10), { message: /not paused/ });
});

test('walks paused at once, resumed in turn with adds and removes between slices, each visit what it matches once and nothing it does not', (t) => {
  // Many first tags and short messages: nodes with more children than a message has tags, looked up by the message's tag ids.
  const wide = Array.from({ length: 20 }, (_, i) => `w${i}`);
  const adds = fc.array(
    fc.record({ holder: fc.constantFrom(...HOLDERS), tags: fc.array(fc.constantFrom(...wide), { minLength: 1, maxLength: 3 }) }),
    { minLength: 20, maxLength: 60 },
  );
  const message = fc.array(fc.constantFrom(...wide, ...STRANGERS), { minLength: 2, maxLength: 6 });
  // New tags between slices, which may be given the ids of tags freed meanwhile.
  const between = fc.array(operationArbitrary([...wide, 'n0', 'n1', 'n2', 'n3'], 3), { maxLength: 60 });
  t.notThrows(() =>
    fc.assert(
      fc.property(adds, fc.array(message, { minLength: 2, maxLength: 4 }), between, (added, messages, operations) => {
        const index = new SubscriptionIndex<string>();
        const reference = new ReferenceMatcher<string>();
        for (const { holder, tags } of added) apply(index, reference, { kind: 'add', holder, tags });
        // Every subscription ever held, by holder and set: a visit to anything else would be a wrong delivery.
        const ever = new Map<string, { holder: string; tags: ReadonlySet<string> }>();
        const remember = () => reference.entries().forEach((pair) => ever.set(`${pair.holder} ${setKey(pair.tags)}`, pair));
        remember();
        const runs = messages.map((tags) => {
          const carried = new Set(tags);
          const visits: string[] = [];
          const visit = (holder: string) => visits.push(holder);
          const matching = () => new Set(reference.entries().filter((pair) => isSubset(pair.tags, carried)).map((pair) => `${pair.holder} ${setKey(pair.tags)}`));
          // Matching subscriptions held from the walk's start to its end: each must be visited.
          const throughout = matching();
          return { tags, carried, visits, visit, matching, throughout, walk: index.start(tags, visit, 1) };
        });
        for (let next = 0; runs.some((run) => run.walk); next++) {
          const operation = operations[next];
          if (operation) apply(index, reference, operation);
          remember();
          for (const run of runs) {
            if (!run.walk) continue;
            const now = run.matching();
            for (const pair of run.throughout) if (!now.has(pair)) run.throughout.delete(pair);
          }
          const run = runs[next % runs.length]!;
          if (run.walk && index.resume(run.walk, run.visit, 1)) run.walk = undefined;
        }
        for (const run of runs) {
          for (const holder of HOLDERS) {
            const count = run.visits.filter((visited) => visited === holder).length;
            const most = [...ever.values()].filter((pair) => pair.holder === holder && isSubset(pair.tags, run.carried)).length;
            const least = [...run.throughout].filter((pair) => pair.startsWith(`${holder} `)).length;
            assert.ok(least <= count && count <= most, `${holder}: ${count} visits, between ${least} and ${most} for ${JSON.stringify(run.tags)}`);
          }
        }
        assert.equal(index.size, reference.size, 'size');
        for (const probe of powerSet(wide.slice(0, 8))) checkMatch(index, reference, probe);
      }),
      { numRuns: 500 },
    ),
  );
});

test("a tag freed while a walk is paused keeps its id until the walk ends: a new tag given it is not found by the walk's lookups", (t) => {
  const index = new SubscriptionIndex<string>();
  const many = Array.from({ length: 10 }, (_, i) => `t${i}`);
  // Each t<i> more used than `a`, so {a, t<i>} runs a → t<i>: `a`'s node gets ten children, looked up by the message's tag ids.
  for (const tag of many) for (let j = 0; j < 10; j++) index.add([tag, `q${j}`], 'filler');
  for (const tag of many) index.add(['a', tag], 'right');
  const visits: string[] = [];
  const visit = (holder: string) => visits.push(holder);
  const walk = index.start(['a', 't0', 't1'], visit, 1);
  if (!walk) return t.fail('not paused');

  // Between slices: t0 is used no more, then a new tag u (more used than `a`, so {a, u} runs a → u) would take a freed id.
  index.remove(['a', 't0'], 'right');
  for (let j = 0; j < 10; j++) index.remove(['t0', `q${j}`], 'filler');
  for (let j = 0; j < 20; j++) index.add(['u', `r${j}`], 'filler');
  index.add(['a', 'u'], 'wrong');
  while (!index.resume(walk, visit, 1));
  t.deepEqual(visits, ['right'], '{a, t1} only: {a, u} does not match');
  t.deepEqual(receivers(index, ['a', 'u']), ['wrong'], 'and u is found once the walk is over');
});

test('subscriptions whose tag sets hash alike are told apart, added and removed in either order', (t) => {
  // Tags get ids in the order they are first used: t0 is 0, t1 is 1… while `anchor` holds them all.
  const names = Array.from({ length: 400 }, (_, i) => `t${i}`);
  const byHash = new Map<number, number[]>();
  let pair: [number[], number[]] | undefined;
  for (let i = 0; i < names.length && !pair; i++) {
    for (let j = i + 1; j < names.length && !pair; j++) {
      const hash = tagSetHash([i, j]);
      const other = byHash.get(hash);
      if (other) pair = [other, [i, j]];
      else byHash.set(hash, [i, j]);
    }
  }
  if (!pair) return t.fail('no two pairs of ids below 400 hash alike');
  const [a, b] = pair.map((ids) => ids.map((id) => names[id]!));
  for (const removeFirst of ['alice', 'bob']) {
    const index = new SubscriptionIndex<string>();
    index.add(names, 'anchor');
    t.true(index.add(a!, 'alice'));
    t.true(index.add(b!, 'bob'));
    t.false(index.add([...b!].reverse(), 'bob'), 'found again through the chain');
    t.is(index.size, 3);
    t.deepEqual(receivers(index, a!), ['alice']);
    t.deepEqual(receivers(index, b!), ['bob']);
    // Removing the chain's head (bob, added last) or the one behind it keeps the other.
    const [gone, kept, keptTags] = removeFirst === 'alice' ? ['alice', 'bob', b!] : ['bob', 'alice', a!];
    t.true(index.remove(removeFirst === 'alice' ? a! : b!, gone));
    t.false(index.remove(removeFirst === 'alice' ? a! : b!, gone));
    t.deepEqual(receivers(index, keptTags), [kept]);
    t.deepEqual(receivers(index, [...a!, ...b!]), [kept]);
    t.true(index.remove(keptTags, kept));
    t.is(index.size, 1);
  }
});

test('a visitor that starts another match on the same index is refused, and the index still works after', (t) => {
  const index = new SubscriptionIndex<string>();
  index.add(['a'], 'alice');
  index.add(['b'], 'bob');
  const error = t.throws(() => index.match(['a', 'b'], () => index.match(['b'], () => {})));
  t.regex(error!.message, /may not start another match/);
  t.deepEqual(sortedList(receivers(index, ['a', 'b'])), ['alice', 'bob']);
  t.true(index.remove(['a'], 'alice'));
  t.deepEqual(receivers(index, ['a', 'b']), ['bob']);
});
