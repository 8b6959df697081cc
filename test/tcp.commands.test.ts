/**
 * The basic commands and the matching rules, black-box over
 * real TCP sockets on 127.0.0.1.
 */
import test, { type ExecutionContext } from 'ava';
import { seededRandom } from './helpers/prng.ts';
import type { Message } from '../core/protocol.ts';
import { eventually, LineClient, startTestServer, lineWithoutId, withoutId } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>['server'];

/** A connected client that already holds `subscriptions` (each reply checked). */
async function subscriber(t: ExecutionContext, server: Server, ...subscriptions: string[][]): Promise<LineClient> {
  const client = await LineClient.connect(t, server.url('tcp'));
  for (const tags of subscriptions) {
    t.deepEqual(await client.request({ command: 'subscribe', tags }), { command: 'subscribe', tags, data: 'success' });
  }
  return client;
}

/**
 * Proves `client` has nothing more queued: replies and deliveries on one
 * connection are ordered, so the ping reply must be the very next line.
 */
async function assertNothingMore(t: ExecutionContext, client: LineClient): Promise<void> {
  t.is(client.pending, 0, 'no unread line before the ping');
  await client.sync();
  t.is(client.pending, 0, 'no unread line after the ping');
}

/** Publishes from `publisher` and waits until the server has handled it (publish has no reply). */
async function publish(publisher: LineClient, tags: string[], data: unknown): Promise<void> {
  publisher.send({ command: 'publish', tags, data });
  await publisher.sync();
}

/** The list reply's subscriptions, decoded from its JSON-encoded `data`. */
async function list(client: LineClient): Promise<string[][]> {
  const reply = await client.request({ command: 'list' });
  if (reply.command !== 'list' || typeof reply.data !== 'string') throw new Error(`bad list reply ${JSON.stringify(reply)}`);
  return JSON.parse(reply.data) as string[][];
}

test('ping replies exactly {"command":"ping","tags":[],"data":"pong"}', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write('{"command":"ping"}\n');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
});

test('subscribe replies exactly with the requested tags and "success"', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write('{"command":"subscribe","tags":["a","b"]}\n');
  t.is(await client.nextLine(), '{"command":"subscribe","tags":["a","b"],"data":"success"}');
  t.is(server.broker.subscriptionCount, 1);
});

test('unsubscribe replies exactly with the requested tags and "success"', async (t) => {
  const { server } = await startTestServer(t);
  const client = await subscriber(t, server, ['a', 'b']);
  client.write('{"command":"unsubscribe","tags":["a","b"]}\n');
  t.is(await client.nextLine(), '{"command":"unsubscribe","tags":["a","b"],"data":"success"}');
  t.is(server.broker.subscriptionCount, 0);
});

test('unsubscribing from a set not held succeeds and changes nothing', async (t) => {
  const { server } = await startTestServer(t);
  const client = await subscriber(t, server, ['a']);
  t.deepEqual(await client.request({ command: 'unsubscribe', tags: ['a', 'zzz'] }), {
    command: 'unsubscribe',
    tags: ['a', 'zzz'],
    data: 'success',
  });
  t.deepEqual(await list(client), [['a']]);
  t.is(server.broker.subscriptionCount, 1);
});

test('list with no subscriptions replies exactly {"command":"list","data":"[]"}', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write('{"command":"list"}\n');
  t.is(await client.nextLine(), '{"command":"list","data":"[]"}');
});

test('list data is a JSON-encoded string of the subscriptions, each sorted, the list sorted', async (t) => {
  const { server } = await startTestServer(t);
  const client = await subscriber(t, server, ['c'], ['b', 'a'], ['d', 'a', 'b'], ['a']);
  client.write('{"command":"list"}\n');
  t.is(await client.nextLine(), String.raw`{"command":"list","data":"[[\"a\"],[\"a\",\"b\"],[\"a\",\"b\",\"d\"],[\"c\"]]"}`);
});

test('list shows only the asking connection’s subscriptions', async (t) => {
  const { server } = await startTestServer(t);
  const one = await subscriber(t, server, ['x']);
  const two = await subscriber(t, server, ['y', 'z']);
  t.deepEqual(await list(one), [['x']]);
  t.deepEqual(await list(two), [['y', 'z']]);
});

test('publish succeeds without any reply', async (t) => {
  const { server } = await startTestServer(t);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const sub = await subscriber(t, server, ['a']);
  publisher.write('{"command":"publish","tags":["a"],"data":"x"}\n');
  t.is(lineWithoutId(await sub.nextLine()), '{"command":"publish","tags":["a"],"data":"x"}');
  // The next line the publisher sees is the ping's reply: publish sent none.
  await assertNothingMore(t, publisher);
  t.is(server.dispatcher.errors, 0);
});

test('an unknown command gets {"command":"<cmd>","error":"Unknown Command"}', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  client.write('{"command":"frobnicate","tags":["a"],"data":"x"}\n');
  t.is(await client.nextLine(), '{"command":"frobnicate","error":"Unknown Command"}');
  await client.sync();
});

test('the matching examples: three subscribers, three publishes, each gets what it subscribed to', async (t) => {
  const { server } = await startTestServer(t);
  const one = await subscriber(t, server, ['onefish']);
  const two = await subscriber(t, server, ['onefish', 'twofish']);
  const three = await subscriber(t, server, ['onefish', 'twofish', 'redfish']);
  const publisher = await LineClient.connect(t, server.url('tcp'));

  const messages = [['onefish'], ['onefish', 'twofish'], ['onefish', 'twofish', 'redfish']];
  for (const [i, tags] of messages.entries()) await publish(publisher, tags, `m${i}`);

  const expected = (indexes: number[]) =>
    indexes.map((i) => ({ command: 'publish', tags: messages[i], data: `m${i}` }));
  const received = async (client: LineClient, count: number) => {
    const lines = [];
    for (let i = 0; i < count; i++) lines.push(withoutId(await client.next()));
    await assertNothingMore(t, client);
    return lines;
  };
  t.deepEqual(await received(one, 3), expected([0, 1, 2]));
  t.deepEqual(await received(two, 2), expected([1, 2]));
  t.deepEqual(await received(three, 1), expected([2]));
});

test('subscriber holding {a,c} and {b,d} receives {a,b,d} once', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['a', 'c'], ['b', 'd']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b', 'd'], 'abd');
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['a', 'b', 'd'], data: 'abd' });
  await assertNothingMore(t, sub);
});

test('subscriber holding {a,c} and {b,d} receives only messages whose tags cover one of those sets', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['a', 'c'], ['b', 'd']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b'], 'no');
  await publish(publisher, ['a', 'd', 'x'], 'no');
  await publish(publisher, ['c', 'x', 'a'], 'yes');
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['c', 'x', 'a'], data: 'yes' });
  await assertNothingMore(t, sub);
});

test('a connection with several matching subscriptions receives the message once', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['a'], ['b'], ['a', 'b'], ['c', 'b', 'a'], ['c']);
  const other = await subscriber(t, server, ['c']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b', 'c'], 1);
  await publish(publisher, ['c', 'b', 'a', 'z'], 2);
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['a', 'b', 'c'], data: 1 });
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['c', 'b', 'a', 'z'], data: 2 });
  await assertNothingMore(t, sub);
  t.is((await other.next()).data, 1);
  t.is((await other.next()).data, 2);
  await assertNothingMore(t, other);
  t.is(server.broker.stats.delivered, 4);
});

test('the publisher never receives its own message, even when subscribed to its tags', async (t) => {
  const { server } = await startTestServer(t);
  const self = await subscriber(t, server, ['a'], ['a', 'b']);
  const other = await subscriber(t, server, ['a']);
  self.send({ command: 'publish', tags: ['a', 'b'], data: 'mine' });
  await assertNothingMore(t, self);
  t.deepEqual(withoutId(await other.next()), { command: 'publish', tags: ['a', 'b'], data: 'mine' });
  // …while it still receives the messages others publish.
  other.send({ command: 'publish', tags: ['a'], data: 'theirs' });
  t.deepEqual(withoutId(await self.next()), { command: 'publish', tags: ['a'], data: 'theirs' });
  await assertNothingMore(t, other);
});

test('subscribing twice to the same set is one subscription, whatever the order or duplicates', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await LineClient.connect(t, server.url('tcp'));
  for (const tags of [['a', 'b'], ['b', 'a', 'a'], ['a', 'b'], ['b', 'b', 'a']]) {
    t.like(await sub.request({ command: 'subscribe', tags }), { command: 'subscribe', data: 'success' });
  }
  t.deepEqual(await list(sub), [['a', 'b']]);
  t.is(server.broker.subscriptionCount, 1);

  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b'], 'once');
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['a', 'b'], data: 'once' });
  await assertNothingMore(t, sub);

  // One unsubscribe, in yet another spelling, removes it.
  t.like(await sub.request({ command: 'unsubscribe', tags: ['a', 'a', 'b'] }), { data: 'success' });
  t.deepEqual(await list(sub), []);
  t.is(server.broker.subscriptionCount, 0);
});

test('unsubscribe removes exactly that set: holding {a} and {a,b}, dropping {a,b} keeps {a}', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['a'], ['a', 'b'], ['b']);
  t.deepEqual(await sub.request({ command: 'unsubscribe', tags: ['b', 'a'] }), {
    command: 'unsubscribe',
    tags: ['b', 'a'],
    data: 'success',
  });
  t.deepEqual(await list(sub), [['a'], ['b']]);
  t.is(server.broker.subscriptionCount, 2);

  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b'], 'still');
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['a', 'b'], data: 'still' });
  await assertNothingMore(t, sub);

  // Dropping {a} and {b} too leaves nothing that matches.
  await sub.request({ command: 'unsubscribe', tags: ['a'] });
  await sub.request({ command: 'unsubscribe', tags: ['b'] });
  t.deepEqual(await list(sub), []);
  await publish(publisher, ['a', 'b'], 'gone');
  await assertNothingMore(t, sub);
  t.is(server.broker.subscriptionCount, 0);
});

test('unsubscribing one connection leaves another connection’s identical subscription alone', async (t) => {
  const { server } = await startTestServer(t);
  const leaving = await subscriber(t, server, ['a', 'b']);
  const staying = await subscriber(t, server, ['b', 'a']);
  await leaving.request({ command: 'unsubscribe', tags: ['a', 'b'] });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b'], 'x');
  t.deepEqual(withoutId(await staying.next()), { command: 'publish', tags: ['a', 'b'], data: 'x' });
  await assertNothingMore(t, leaving);
});

test('publish data of any JSON type is forwarded verbatim', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['d']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const values: unknown[] = [
    { nested: { list: [1, 'two', null, true], empty: {} }, 'key with "quotes"': 'v' },
    42,
    -3.25e-7,
    0,
    [1, [2, [3]], { x: 'y' }],
    [],
    'plain',
    'ünïcödé ✓ 日本語 🐟 and a\nnewline, a \r return, a \t tab, a \\ and a " quote, \u0000 nul, \u2028 separator',
    '',
    true,
    false,
    null,
  ];
  for (const data of values) publisher.send({ command: 'publish', tags: ['d'], data });
  await publisher.sync();
  for (const data of values) {
    const line = await sub.nextLine();
    t.deepEqual(withoutId(JSON.parse(line) as Message), { command: 'publish', tags: ['d'], data });
  }
  await assertNothingMore(t, sub);
});

test('publish data that a JSON round trip would change arrives exactly as written', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['d']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  // Digits past double precision, a number past its range, duplicate keys, insignificant spaces.
  const sent = ['12345678901234567890', '1e400', '{"id":9007199254740993,"id":1}', '[ 1.50 ,\t{ "a" : "  spaced  " } ]'];
  const expected = ['12345678901234567890', '1e400', '{"id":9007199254740993,"id":1}', '[1.50,{"a":"  spaced  "}]'];
  for (const data of sent) publisher.write(`{"command":"publish","tags":["d"],"data":${data}}\n`);
  await publisher.sync();
  for (const data of expected) t.is(lineWithoutId(await sub.nextLine()), `{"command":"publish","tags":["d"],"data":${data}}`);
  await assertNothingMore(t, sub);
});

test('publish data nested 100000 levels deep is forwarded, not refused', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['d']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const data = '['.repeat(100_000) + ']'.repeat(100_000);
  publisher.write(`{"command":"publish","tags":["d"],"data":${data}}\n`);
  await publisher.sync();
  t.is(lineWithoutId(await sub.nextLine()), `{"command":"publish","tags":["d"],"data":${data}}`);
  t.is(server.dispatcher.errors, 0);
});

test('the bytes of a published string arrive escaped on a single line', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['d']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  publisher.write('{"command":"publish","tags":["d"],"data":"line one\\nline two \u00e9 \ud83d\udc1f"}\n');
  t.is(lineWithoutId(await sub.nextLine()), '{"command":"publish","tags":["d"],"data":"line one\\nline two é 🐟"}');
  await assertNothingMore(t, sub);
});

test('1000 messages from one publisher reach a subscriber in the order published', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['seq']);
  const publisher = await LineClient.connect(t, server.url('tcp'));
  let batch = '';
  for (let i = 0; i < 1000; i++) batch += JSON.stringify({ command: 'publish', tags: ['seq'], data: i }) + '\n';
  publisher.write(batch);
  await publisher.sync();
  const received: unknown[] = [];
  for (let i = 0; i < 1000; i++) received.push((await sub.next()).data);
  t.deepEqual(received, Array.from({ length: 1000 }, (_, i) => i));
  await assertNothingMore(t, sub);
});

test('several publishers and subscribers at once: each subscriber gets exactly its matches, in each publisher’s order', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  // Subscriber name → its subscriptions.
  const plan: Record<string, string[][]> = {
    red: [['red']],
    blue: [['blue']],
    both: [['red', 'blue']],
    any: [['red'], ['blue'], ['green']],
    greenish: [['green', 'x']],
  };
  const subs = new Map<string, LineClient>();
  for (const [name, subscriptions] of Object.entries(plan)) subs.set(name, await subscriber(t, server, ...subscriptions));
  const publishers = await Promise.all([0, 1, 2].map(() => LineClient.connect(t, url)));
  const tagSets = [['red'], ['blue'], ['red', 'blue'], ['green'], ['green', 'x', 'red'], ['x']];

  // Every publisher interleaves 300 messages over the tag sets, all written at once.
  const sent: Array<{ tags: string[]; data: { p: number; n: number } }> = [];
  publishers.forEach((publisher, p) => {
    let text = '';
    for (let n = 0; n < 300; n++) {
      const message = { tags: tagSets[(n + p) % tagSets.length]!, data: { p, n } };
      sent.push(message);
      text += JSON.stringify({ command: 'publish', ...message }) + '\n';
    }
    publisher.write(text);
  });
  await Promise.all(publishers.map((publisher) => publisher.sync()));

  const matches = (subscriptions: string[][], tags: string[]) => subscriptions.some((s) => s.every((tag) => tags.includes(tag)));
  for (const [name, client] of subs) {
    const expected = sent.filter((m) => matches(plan[name]!, m.tags));
    const received: Array<{ tags: string[]; data: { p: number; n: number } }> = [];
    for (let i = 0; i < expected.length; i++) {
      const message = await client.next();
      received.push({ tags: message.tags as string[], data: message.data as { p: number; n: number } });
    }
    await assertNothingMore(t, client);
    // Publishers interleave freely; per publisher, the order is the publishing order.
    for (const p of [0, 1, 2]) {
      t.deepEqual(
        received.filter((m) => m.data.p === p),
        expected.filter((m) => m.data.p === p),
        `${name} from publisher ${p}`,
      );
    }
  }
});

test('closing a subscriber removes its subscriptions and its connection', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await subscriber(t, server, ['a'], ['a', 'b'], ['c']);
  const other = await subscriber(t, server, ['a']);
  t.is(server.broker.subscriptionCount, 3);
  t.is(server.connections.count, 2);
  sub.close();
  await eventually(() => server.connections.count === 1, WAIT_MS, 'connection count 1');
  t.is(server.broker.subscriptionCount, 1);
  other.close();
  await eventually(() => server.connections.count === 0, WAIT_MS, 'connection count 0');
  t.is(server.broker.subscriptionCount, 0);
  t.is(server.connections.total, 2);

  // Nobody is left to receive: a publish delivers to no one, and nothing breaks.
  const publisher = await LineClient.connect(t, server.url('tcp'));
  await publish(publisher, ['a', 'b', 'c'], 'void');
  t.is(server.broker.stats.delivered, 0);
});

test('every combination: random subscriptions on several connections get exactly the messages a subset rule gives', async (t) => {
  const { server } = await startTestServer(t);
  const random = seededRandom(0x5eed);
  const alphabet = ['a', 'b', 'c', 'd', 'e', 'f'];
  const someTags = (max: number) => {
    const count = 1 + Math.floor(random() * max);
    return Array.from({ length: count }, () => alphabet[Math.floor(random() * alphabet.length)]!);
  };
  const plans = Array.from({ length: 6 }, () => Array.from({ length: 1 + Math.floor(random() * 3) }, () => someTags(3)));
  const clients = [];
  for (const plan of plans) clients.push(await subscriber(t, server, ...plan));
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const messages = Array.from({ length: 80 }, (_, n) => ({ tags: someTags(5), data: n }));
  for (const message of messages) publisher.send({ command: 'publish', ...message });
  await publisher.sync();

  for (const [i, client] of clients.entries()) {
    const expected = messages.filter((m) => plans[i]!.some((s) => s.every((tag) => m.tags.includes(tag))));
    for (const message of expected) t.deepEqual(withoutId(await client.next()), { command: 'publish', ...message });
    await assertNothingMore(t, client);
  }
});
