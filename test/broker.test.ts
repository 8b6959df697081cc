/**
 * The broker's sliced work, without a network: publishes queued behind a
 * match that takes several turns, and a closed session's teardown a slice a
 * turn. (Over TCP: test/slices.test.ts.)
 */
import 'reflect-metadata';
import test from 'ava';
import { Broker, type BrokerHooks } from '../core/broker.ts';
import { createLogger } from '../core/logger.ts';
import type { Frame } from '../core/protocol.ts';
import type { Session } from '../core/session.ts';
import { tagSetKey } from '../core/tags.ts';
import { DEFAULT_LIMITS } from '../host/defaults.ts';
import { seededRandom } from './helpers/prng.ts';

/** A session as the broker sees it, recording the data of what it is delivered. */
interface FakeSession {
  isOpen: boolean;
  received: unknown[];
}

function fakeSession(id: number): Session & FakeSession {
  const received: unknown[] = [];
  const session = {
    id,
    info: { transport: 'test', remote: `peer ${id}` },
    isOpen: true,
    subscriptions: new Map(),
    subscribedAt: new Map(),
    stamp: 0,
    refusedSubscriptions: 0,
    received,
    deliver: (frame: Frame) => received.push(JSON.parse(frame.json).data),
  };
  return session as unknown as Session & FakeSession;
}

function broker(maxSubscriptionsPerConnection = DEFAULT_LIMITS.maxSubscriptionsPerConnection): Broker {
  return new Broker({ ...DEFAULT_LIMITS, maxSubscriptionsPerConnection }, createLogger('FATAL'));
}

async function turnsUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

const MESSAGE = Array.from({ length: 64 }, (_, i) => `m${i}`);

test('a paused match holds back no one else: cheap publishes are delivered at once, its publisher is told when it is delivered, and messages from other nodes keep their order', async (t) => {
  const b = broker();
  const rand = seededRandom(3);
  const heavy = fakeSession(1);
  // Subsets of the message down paths of their own: a match of many slices.
  for (let i = 0; i < 5_000; i++) b.subscribe(heavy, MESSAGE.filter(() => rand() < 0.4));
  const light = fakeSession(2);
  b.subscribe(light, ['m0']);
  const publisher = fakeSession(3);
  b.subscribe(publisher, ['m0']);

  const whole = b.publish(publisher, MESSAGE, '"whole"');
  t.true(whole instanceof Promise, 'the match did not fit in one slice');
  b.publishRemote(MESSAGE, '"remote whole"');
  b.publishRemote(['m0'], '"remote next"');
  t.is(b.publish(undefined, ['m0'], '"cheap"'), undefined, 'delivered at once');
  t.deepEqual(light.received, ['cheap'], 'not held back by the paused matches');
  t.deepEqual(heavy.received, [], 'a paused match delivers nothing before it ends');
  await whole;
  await turnsUntil(() => b.stats.published === 4);
  t.deepEqual(heavy.received.sort(), ['remote whole', 'whole'], 'each once, though thousands of its subscriptions match');
  t.deepEqual(light.received.slice(0, 1), ['cheap']);
  t.true(light.received.indexOf('remote whole') < light.received.indexOf('remote next'), `messages from other nodes in order: ${light.received.join(', ')}`);
  t.false(publisher.received.includes('whole'), 'never its own');
  t.like(b.stats, { published: 4, slicedMatches: 2 });
  t.true(b.stats.matchSlices > 2);
});

test("a closed session's subscriptions leave a slice a turn, each once, and it receives nothing meanwhile", async (t) => {
  const b = broker(100_000);
  const told = new Map<string, number>();
  const hooks: BrokerHooks = {
    published() {},
    subscribed() {},
    unsubscribed: (canonical) => told.set(tagSetKey(canonical), (told.get(tagSetKey(canonical)) ?? 0) + 1),
  };
  b.hooks = hooks;
  const leaving = fakeSession(1);
  for (let i = 0; i < 50_000; i++) b.subscribe(leaving, ['k', `s${i}`]);
  const staying = fakeSession(2);
  b.subscribe(staying, ['k']);

  leaving.isOpen = false;
  b.forget(leaving);
  t.true(b.subscriptionCount > 1, 'not all in one go');
  b.publish(undefined, ['k', 's49999'], '"meanwhile"');
  // An asynchronous command that finishes after the close (auth dropping forbidden subscriptions) unsubscribes too.
  b.unsubscribe(leaving, ['k', 's49999']);
  await turnsUntil(() => b.subscriptionCount === 1);
  t.deepEqual(staying.received, ['meanwhile']);
  t.deepEqual(leaving.received, []);
  t.is(leaving.subscriptions.size, 0);
  t.is(told.size, 50_000);
  t.true([...told.values()].every((count) => count === 1), 'each told once');
});

test('a subscribe past maxSubscriptionsPerConnection is refused with kind limit and changes nothing; a set already held is no new one', (t) => {
  const b = broker(2);
  const session = fakeSession(1);
  b.subscribe(session, ['a']);
  b.subscribe(session, ['b', 'c']);
  b.subscribe(session, ['c', 'b', 'b']);
  const error = t.throws(() => b.subscribe(session, ['d']));
  t.like(error, { name: 'CommandError', kind: 'limit', message: 'too many subscriptions: 3 (limit 2)' });
  t.is(b.subscriptionCount, 2);
  t.is(session.subscriptions.size, 2);
  t.is(b.stats.refusedSubscriptions, 1);
  b.unsubscribe(session, ['a']);
  b.subscribe(session, ['d']);
  t.is(b.subscriptionCount, 2);
});
