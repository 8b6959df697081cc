/**
 * No single command holds the event loop for long, over real TCP: an
 * expensive match is delivered in slices, a flood of subscribes in one
 * write is taken a slice a turn, and a closed connection's subscriptions
 * are dropped a slice a turn; other clients are answered in between. Each
 * test proves the slicing by what the server had done when a bystander's
 * reply came, never by timing.
 */
import test, { type ExecutionContext } from 'ava';
import type { BrokerHooks } from '../core/broker.ts';
import type { Message } from '../core/protocol.ts';
import { TURN_INPUT_MS, turnInputSpent } from '../core/slices.ts';
import { tagSetKey } from '../core/tags.ts';
import { MESSAGE, subsetsOfMessage } from './helpers/crafted.ts';
import { eventually, LineClient, startTestServer, withoutId } from './helpers/server.ts';

/** Sends every subscribe in one write, then checks each reply, in order. */
async function subscribeInOneWrite(t: ExecutionContext, client: LineClient, sets: readonly string[][]): Promise<void> {
  client.write(sets.map((tags) => JSON.stringify({ command: 'subscribe', tags }) + '\n').join(''));
  await expectSubscribed(t, client, sets);
}

async function expectSubscribed(t: ExecutionContext, client: LineClient, sets: readonly string[][]): Promise<void> {
  let inOrder = 0;
  for (const tags of sets) {
    const reply = await client.next();
    if (reply.data === 'success' && JSON.stringify(reply.tags) === JSON.stringify(tags)) inOrder++;
  }
  t.is(inOrder, sets.length, 'every subscribe answered, in order');
}

/** Lets the event loop turn until `condition` holds: for states of the in-process server that no client sees. */
async function turnsUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** The next lines `client` receives, up to and including its ping reply: what was delivered before the ping. */
async function linesBeforePing(client: LineClient): Promise<Message[]> {
  client.send({ command: 'ping' });
  const lines: Message[] = [];
  for (let line = await client.next(); line.command !== 'ping'; line = await client.next()) lines.push(withoutId(line));
  return lines;
}

test('an expensive match is delivered in slices, once and in order to every matching subscriber, holding back no one else', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const handed: unknown[] = [];
  server.broker.hooks = { published: (_tags, data) => handed.push(data && JSON.parse(data)), subscribed() {}, unsubscribed() {} };
  // 20k subscriptions that all match: a match of about twenty times the slice's steps.
  const heavy = [await LineClient.connect(t, url), await LineClient.connect(t, url)];
  await Promise.all(heavy.map((client, i) => subscribeInOneWrite(t, client, subsetsOfMessage(i + 1, 10_000))));
  const light = await LineClient.connect(t, url);
  await subscribeInOneWrite(t, light, [['m0'], ['m1', 'm2']]);
  const outsider = await LineClient.connect(t, url);
  await subscribeInOneWrite(t, outsider, [['m0', 'elsewhere']]);
  const bystander = await LineClient.connect(t, url);
  const publisher = await LineClient.connect(t, url);
  const polite = await LineClient.connect(t, url);

  publisher.write(
    [
      { command: 'publish', tags: MESSAGE, data: 'whole' },
      { command: 'publish', tags: ['m0'], data: 1 },
      { command: 'publish', tags: ['m0'], data: 2 },
    ]
      .map((message) => JSON.stringify(message) + '\n')
      .join(''),
  );
  await turnsUntil(() => server.broker.stats.slicedMatches === 1);
  // Mid-match: a message from another node and another client's publishes are delivered at once, and a bystander's ping is answered.
  server.broker.publishRemote(['m0'], '"remote"');
  for (const data of ['polite 1', 'polite 2']) polite.send({ command: 'publish', tags: ['m0'], data });
  t.deepEqual(await polite.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await bystander.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.is(server.broker.stats.published, 3, 'the others were delivered before the expensive publish');

  // Its publisher waits for it: its next two come after it.
  await turnsUntil(() => server.broker.stats.published === 6);
  const whole = { command: 'publish', tags: MESSAGE, data: 'whole' };
  for (const client of heavy) t.deepEqual(await linesBeforePing(client), [whole], 'once, though 10,000 of its subscriptions match');
  const m0 = (data: unknown) => ({ command: 'publish', tags: ['m0'], data });
  t.deepEqual(
    await linesBeforePing(light),
    [m0('remote'), m0('polite 1'), m0('polite 2'), whole, m0(1), m0(2)],
    'once each; each publisher in order: the others first, then the expensive one and what its publisher sent after it',
  );
  t.deepEqual(await linesBeforePing(outsider), []);
  t.deepEqual(await linesBeforePing(publisher), [], 'never its own');
  t.deepEqual(handed, ['polite 1', 'polite 2', 'whole', 1, 2], 'handed to the cluster once delivered here, in order, without the remote one');
  t.true(server.broker.stats.matchSlices >= 5, `${server.broker.stats.matchSlices} slices after the first`);
});

test('expensive matches from several connections take turns: a polite publisher is delivered at once throughout', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const heavy = [await LineClient.connect(t, url), await LineClient.connect(t, url)];
  await Promise.all(heavy.map((client, i) => subscribeInOneWrite(t, client, subsetsOfMessage(i + 1, 10_000))));
  const light = await LineClient.connect(t, url);
  await subscribeInOneWrite(t, light, [['m0']]);
  const attackers = await Promise.all([1, 2, 3].map(() => LineClient.connect(t, url)));
  const polite = await LineClient.connect(t, url);
  const publish = (data: string, tags = MESSAGE): string => JSON.stringify({ command: 'publish', tags, data }) + '\n';

  attackers.forEach((attacker, i) => attacker.write(publish(`costly ${i}a`) + publish(`costly ${i}b`)));
  await turnsUntil(() => server.broker.stats.slicedMatches === 3);
  for (let i = 0; i < 20; i++) {
    polite.send({ command: 'publish', tags: ['m0'], data: `polite ${i}` });
    await polite.request({ command: 'ping' });
    if (i === 0) t.is(server.broker.stats.published, 1, 'delivered while the three costly matches are still paused');
  }

  await turnsUntil(() => server.broker.stats.published === 26);
  const received = (await linesBeforePing(light)).map((line) => String(line.data));
  t.is(received.length, 26, 'each once');
  for (const prefix of ['polite', 'costly 0', 'costly 1', 'costly 2']) {
    const own = received.filter((data) => data.startsWith(prefix));
    t.deepEqual(own, [...own].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })), `${prefix}: in the order published`);
  }
  for (const client of heavy) t.is((await linesBeforePing(client)).length, 6, 'every costly publish, once');
});

test('a flood of subscribes in one write is answered completely and in order, while another client is answered in between', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const flooders = await Promise.all([1, 2, 3].map(() => LineClient.connect(t, url)));
  const bystander = await LineClient.connect(t, url);
  const sets = flooders.map((_, f) => Array.from({ length: 10_000 }, (_, i) => [`flood${f}`, `t${i}`]));
  flooders.forEach((client, f) => client.write(sets[f]!.map((tags) => JSON.stringify({ command: 'subscribe', tags }) + '\n').join('')));
  await turnsUntil(() => server.broker.subscriptionCount > 0);
  t.deepEqual(await bystander.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.true(server.broker.subscriptionCount < 30_000, `answered with ${server.broker.subscriptionCount} of 30,000 subscribes done`);
  await Promise.all(flooders.map((client, f) => expectSubscribed(t, client, sets[f]!)));
  t.is(server.broker.subscriptionCount, 30_000);
});

test('a turn spends its input budget TURN_INPUT_MS after the first session timed it, whatever the sessions; the next turn starts afresh', (t) => {
  // Turn numbers no event loop reaches, and times of the test's own choosing: the budget's arithmetic alone.
  const turn = -1000;
  t.false(turnInputSpent(turn, 5000), 'the first call starts the timing');
  t.false(turnInputSpent(turn, 5000 + TURN_INPUT_MS - 0.1));
  t.true(turnInputSpent(turn, 5000 + TURN_INPUT_MS), 'spent, for every session of the turn');
  t.false(turnInputSpent(turn - 1, 5000 + TURN_INPUT_MS), 'another turn, another budget');
});

test("a closed connection's subscriptions all leave the index, each told to the cluster hooks once", async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const told = new Map<string, number>();
  const hooks: BrokerHooks = {
    published() {},
    subscribed() {},
    unsubscribed: (canonical) => told.set(tagSetKey(canonical), (told.get(tagSetKey(canonical)) ?? 0) + 1),
  };
  server.broker.hooks = hooks;
  const leaving = await LineClient.connect(t, url);
  const sets = Array.from({ length: 10_000 }, (_, i) => [`a${i % 100}`, `b${i}`].sort());
  await subscribeInOneWrite(t, leaving, sets);
  const staying = await LineClient.connect(t, url);
  await subscribeInOneWrite(t, staying, [sets[0]!, ['elsewhere']]);
  t.is(server.broker.subscriptionCount, 10_001);

  leaving.close();
  await eventually(() => server.broker.subscriptionCount === 2);
  await eventually(() => told.size === sets.length);
  t.true(
    sets.every((tags) => told.get(tagSetKey(tags)) === 1),
    'each subscription of the closed connection told once',
  );
  t.false(told.has(tagSetKey(['elsewhere'])));
  // The set both held is still the staying connection's.
  const publisher = await LineClient.connect(t, url);
  publisher.send({ command: 'publish', tags: sets[0], data: 'still here' });
  t.deepEqual(withoutId(await staying.next()), { command: 'publish', tags: sets[0], data: 'still here' });
});
