/**
 * Resume over TCP: a client that comes back gets exactly what it missed, in
 * order, then live messages, with no duplicate and no hole — or is told of
 * a gap. (WebSocket and SSE: resume.web.test.ts; across nodes:
 * resume.cluster.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import type { Message } from '../core/protocol.ts';
import type { Sink } from '../core/session.ts';
import { authScene } from './helpers/auth.ts';
import { MESSAGE, subsetsOfMessage } from './helpers/crafted.ts';
import { GAP, publishRange, range, readUntilReply, resume, SUCCESS } from './helpers/resume.ts';
import { eventually, LineClient, startTestServer } from './helpers/server.ts';

async function subscriber(t: ExecutionContext, url: string, ...subscriptions: string[][]): Promise<LineClient> {
  const client = await LineClient.connect(t, url);
  for (const tags of subscriptions) t.is((await client.request({ command: 'subscribe', tags })).data, 'success');
  return client;
}

/** The data of each message. */
const data = (messages: Message[]): unknown[] => messages.map((message) => message.data);

/** A subscriber to `tags` that has received one message and so knows an id to resume from. */
async function seen(t: ExecutionContext, url: string, publisher: LineClient, tags: string[]): Promise<{ client: LineClient; id: string }> {
  const client = await subscriber(t, url, tags);
  publisher.send({ command: 'publish', tags, data: 'seen' });
  const message = await client.next();
  t.is(message.data, 'seen');
  return { client, id: message.id! };
}

test('a subscriber drops, 100 messages are published, it resumes and gets exactly those 100 in order, then live ones', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client, id } = await seen(t, url, publisher, ['news']);
  client.close();
  await publishRange(publisher, ['news'], 0, 100);
  publisher.send({ command: 'publish', tags: ['sports'], data: 'not subscribed' });

  const back = await subscriber(t, url, ['news']);
  const { messages, reply } = await resume(back, id);
  t.deepEqual(reply, SUCCESS);
  t.deepEqual(data(messages), range(0, 100));
  t.true(messages.every((message) => message.command === 'publish' && typeof message.id === 'string'));
  t.deepEqual(
    messages.map((message) => server.history.seqOf(message.id!)),
    range(2, 102),
    'each with its own id, in id order',
  );
  publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
  t.is((await back.next()).data, 'live');
  await back.sync();
  t.is(back.pending, 0);
  t.like(server.history.stats, { replays: 1, gaps: 0, replayed: 100 });
});

test('resume after retention passed answers gap and sends what remains', async (t) => {
  const { server } = await startTestServer(t, { history: { maxMessages: 30 } });
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client, id } = await seen(t, url, publisher, ['a']);
  client.close();
  await publishRange(publisher, ['a'], 0, 100);
  const back = await subscriber(t, url, ['a']);
  const { messages, reply } = await resume(back, id);
  t.deepEqual(reply, GAP);
  t.deepEqual(data(messages), range(70, 100));
  t.like(server.history.stats, { replays: 1, gaps: 1 });
  const metrics = await server.metrics.render();
  t.regex(metrics, /^mist_history_messages 30$/m);
  t.regex(metrics, new RegExp(`^mist_history_bytes ${server.history.bytes}$`, 'm'));
  t.true(server.history.bytes > 30 * 40);
  t.regex(metrics, /^mist_history_replays_total 1$/m);
  t.regex(metrics, /^mist_history_gaps_total 1$/m);
  t.regex(metrics, /^mist_history_replayed_messages_total 30$/m);
});

test('resume with the newest id answers success and sends nothing', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const { client, id } = await seen(t, url, await LineClient.connect(t, url), ['a']);
  t.deepEqual(await resume(client, id), { messages: [], reply: SUCCESS });
});

test('resume while messages keep being published: no duplicate, no hole between the replay and live ones', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client, id } = await seen(t, url, publisher, ['n']);
  client.close();
  // A backlog long enough that its replay takes several turns, with publishes in between.
  await publishRange(publisher, ['n'], 0, 8000);

  const back = await subscriber(t, url, ['n']);
  back.send({ command: 'resume', data: id });
  const received: unknown[] = [];
  let reply: Message | undefined;
  let next = 8000;
  const reading = (async () => {
    while (received.length === 0 || received.at(-1) !== 'end') {
      const message = await back.next();
      if (message.command === 'resume') reply = message;
      else received.push(message.data);
    }
  })();
  // Publish on while the replay runs, and a while after its reply.
  for (let after = 0; after < 5; after += reply ? 1 : 0) {
    await publishRange(publisher, ['n'], next, next + 50);
    next += 50;
  }
  publisher.send({ command: 'publish', tags: ['n'], data: 'end' });
  await reading;
  t.deepEqual(reply, SUCCESS);
  t.deepEqual(received, [...range(0, next), 'end']);
});

test('a message the connection was sent live, or published itself, is not replayed to it', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { id } = await seen(t, url, publisher, ['a']);
  // Subscribed before "live" was published: it had it live, and a resume does not send it again.
  const early = await subscriber(t, url, ['a']);
  publisher.send({ command: 'publish', tags: ['a'], data: 'live' });
  t.is((await early.next()).data, 'live');
  early.send({ command: 'publish', tags: ['a', 'b'], data: 'its own' });
  await early.sync();
  // Subscribed after: it was not sent them, and gets them now (but not what it published itself).
  const late = await subscriber(t, url, ['a']);
  t.deepEqual(data((await resume(early, id)).messages), []);
  t.deepEqual(data((await resume(late, id)).messages), ['live', 'its own']);
  // A subscription taken since covers what it was not sent through the first.
  t.is((await early.request({ command: 'subscribe', tags: ['b'] })).data, 'success');
  t.deepEqual(data((await resume(early, id)).messages), [], 'its own message matches {b}, but is its own');
  t.is((await late.request({ command: 'unsubscribe', tags: ['a'] })).data, 'success');
  t.deepEqual(data((await resume(late, id)).messages), [], 'no subscription left matches');
});

test('a message matching several subscriptions is replayed once, and only messages matching a subscription are', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client, id } = await seen(t, url, publisher, ['a', 'c']);
  client.close();
  for (const [tags, n] of [[['a', 'b', 'd'], 1], [['a', 'b'], 2], [['c', 'a'], 3], [['d', 'b'], 4], [['x'], 5]] as const) {
    publisher.send({ command: 'publish', tags, data: n });
  }
  await publisher.sync();
  const back = await subscriber(t, url, ['a', 'c'], ['b', 'd'], ['d']);
  t.deepEqual(data((await resume(back, id)).messages), [1, 3, 4]);
});

test('server restart: an id from before it answers gap, with what the new server retained', async (t) => {
  const first = await startTestServer(t);
  const publisher = await LineClient.connect(t, first.server.url('tcp'));
  const { id } = await seen(t, first.server.url('tcp'), publisher, ['a']);
  await first.server.close();

  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const back = await subscriber(t, url, ['a']);
  (await LineClient.connect(t, url)).send({ command: 'publish', tags: ['a'], data: 'after the restart' });
  t.is((await back.next()).data, 'after the restart');
  const again = await subscriber(t, url, ['a']);
  const { messages, reply } = await resume(again, id);
  t.deepEqual(reply, GAP);
  t.deepEqual(data(messages), ['after the restart']);
});

test('a token limited to some tags replays only through the subscriptions those tags allow', async (t) => {
  const { admin, user } = await authScene(t);
  t.is((await admin.request({ command: 'register', tags: ['news'], data: 'reader' })).data, 'success');
  const reader = await user('reader');
  t.is((await reader.request({ command: 'subscribe', tags: ['news'] })).data, 'success');
  admin.send({ command: 'publish', tags: ['news'], data: 'seen' });
  const { id } = await reader.next();
  reader.close();
  for (const [tags, n] of [[['news'], 1], [['secret'], 2], [['news', 'extra'], 3], [['sports'], 4]] as const) {
    admin.send({ command: 'publish', tags, data: n });
  }
  await admin.sync();

  const back = await user('reader');
  t.like(await back.request({ command: 'subscribe', tags: ['secret'] }), { error: 'not permitted to use tags: secret' });
  t.is((await back.request({ command: 'subscribe', tags: ['news'] })).data, 'success');
  const { messages, reply } = await resume(back, id!);
  t.deepEqual(reply, SUCCESS);
  t.deepEqual(data(messages), [1, 3], 'what live delivery would have sent it');
});

test('resume needs an authenticated connection when an authenticator is configured', async (t) => {
  const { anonymous } = await authScene(t);
  const stranger = await anonymous();
  t.deepEqual(await stranger.request({ command: 'resume', data: 'x-1' }), { command: 'resume', error: 'not authenticated: send auth first' });
});

test('with history: false, messages carry no id and resume answers gap', async (t) => {
  const { server } = await startTestServer(t, { history: false });
  const url = server.url('tcp');
  const sub = await subscriber(t, url, ['a']);
  (await LineClient.connect(t, url)).send({ command: 'publish', tags: ['a'], data: 1 });
  t.deepEqual(await sub.next(), { command: 'publish', tags: ['a'], data: 1 });
  t.deepEqual(await resume(sub, 'anything-1'), { messages: [], reply: GAP });
});

test('resume with a bad id is an error; an id this server never issued is a gap; the connection stays usable', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client } = await seen(t, url, publisher, ['a']);
  const needsId = 'resume needs the id of the last message received as data';
  t.deepEqual(await client.request({ command: 'resume' }), { command: 'resume', error: needsId });
  t.deepEqual(await client.request({ command: 'resume', data: '' }), { command: 'resume', error: needsId });
  t.deepEqual(await client.request({ command: 'resume', data: 42 }), { command: 'resume', error: '"data" must be a string' });
  t.deepEqual(await client.request({ command: 'resume', data: ['x'] }), { command: 'resume', error: '"data" must be a string' });
  for (const id of ['nonsense', 'zz-1', '9'.repeat(40), '-1']) t.deepEqual(await resume(client, id), { messages: [], reply: GAP }, id);
  await client.sync();
  publisher.send({ command: 'publish', tags: ['a'], data: 'still live' });
  t.is((await client.next()).data, 'still live');
});

test('resume while a message is still being matched: it was not delivered yet, so the resuming connection gets it live, once, as does a subscription taken meanwhile', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  // 20k subscriptions that all match the message: a match of about twenty slices.
  for (const seed of [1, 2]) {
    const heavy = await LineClient.connect(t, url);
    heavy.write(subsetsOfMessage(seed, 10_000).map((tags) => JSON.stringify({ command: 'subscribe', tags }) + '\n').join(''));
    heavy.send({ command: 'ping' });
    await readUntilReply(heavy, 'ping');
  }
  const publisher = await LineClient.connect(t, url);
  const { id } = await seen(t, url, publisher, ['m0']);
  // Subscribed before the message, down paths of their own: when they resume, the match has reached some and not others.
  const early = await Promise.all(subsetsOfMessage(3, 10).map((tags) => subscriber(t, url, tags)));
  publisher.write(
    [{ command: 'publish', tags: MESSAGE, data: 'whole' }, ...['queued', 'end'].map((data) => ({ command: 'publish', tags: ['m0'], data }))]
      .map((message) => JSON.stringify(message) + '\n')
      .join(''),
  );
  await eventually(() => server.broker.stats.slicedMatches === 1, undefined, 'a sliced match');
  for (const client of early) client.send({ command: 'resume', data: id });
  const late = await LineClient.connect(t, url);
  late.write(JSON.stringify({ command: 'subscribe', tags: ['m0'] }) + '\n' + JSON.stringify({ command: 'resume', data: id }) + '\n');
  const readThrough = async (client: LineClient): Promise<{ replies: Message[]; received: unknown[] }> => {
    const replies: Message[] = [];
    const received: unknown[] = [];
    for (let message = await client.next(); ; message = await client.next()) {
      if (message.command !== 'publish') replies.push(message);
      else if (received.push(message.data) && message.data === 'end') return { replies, received };
    }
  };
  for (const client of early) {
    const { messages, reply } = await readUntilReply(client, 'resume');
    t.deepEqual(reply, SUCCESS);
    t.deepEqual(data(messages), [], 'not replayed: it had not been delivered when the resume came');
    t.like(await client.next(), { command: 'publish', tags: MESSAGE, data: 'whole' }, 'live, once the match is done');
    client.send({ command: 'ping' });
    t.deepEqual(data((await readUntilReply(client, 'ping')).messages), [], 'once');
  }
  // Taken mid-match, the subscription gets the message with the others the match reached.
  t.deepEqual(await readThrough(late), {
    replies: [{ command: 'subscribe', tags: ['m0'], data: 'success' }, SUCCESS],
    received: ['whole', 'queued', 'end'],
  });
});

/** A sink that takes what it is written and hands it to the "kernel" only when the test says so. */
function slowSink(): { sink: Sink; written: string[]; read(): void; buffered: () => number } {
  const written: string[] = [];
  let buffered = 0;
  let waiting: Array<() => void> = [];
  const sink: Sink = {
    write(frame) {
      written.push(frame.json);
      buffered += frame.byteLength;
    },
    get bufferedBytes() {
      return buffered;
    },
    end() {},
    destroy() {},
    pause() {},
    resume() {},
    whenDrained(callback) {
      if (buffered === 0) queueMicrotask(callback);
      else waiting.push(callback);
    },
  };
  const read = (): void => {
    buffered = 0;
    const callbacks = waiting;
    waiting = [];
    for (const callback of callbacks) callback();
  };
  return { sink, written, read, buffered: () => buffered };
}

test('a replay larger than the client buffer waits for the client to read, drops nothing, and live messages come after it', async (t) => {
  const maxBufferedBytes = 64 * 1024;
  const { server } = await startTestServer(t, { limits: { maxBufferedBytes } });
  const url = server.url('tcp');
  const publisher = await LineClient.connect(t, url);
  const { client, id } = await seen(t, url, publisher, ['big']);
  client.close();
  const body = 'b'.repeat(500);
  for (let n = 0; n < 1000; n++) publisher.send({ command: 'publish', tags: ['big'], data: `${n} ${body}` });
  await publisher.sync();

  const { sink, written, read, buffered } = slowSink();
  const session = server.connections.open(sink, { transport: 'test', remote: 'slow reader' });
  t.teardown(() => session.closed());
  await server.connections.handle(session, JSON.stringify({ command: 'subscribe', tags: ['big'] }));
  written.length = 0;
  const done = server.connections.handle(session, JSON.stringify({ command: 'resume', data: id }));
  t.true(done instanceof Promise, 'the replay waits for the client');
  const cap = maxBufferedBytes / 2 + 1000;
  let rounds = 0;
  for (; !written.some((json) => json.startsWith('{"command":"resume"')); rounds++) {
    t.true(buffered() <= cap, `at most half the buffer and a message queued: ${buffered()}`);
    if (rounds === 1) publisher.send({ command: 'publish', tags: ['big'], data: 'live' });
    await publisher.sync();
    read();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
  t.true(rounds > 10, `${rounds} rounds of reading`);
  const messages = written.map((json) => JSON.parse(json) as Message);
  t.deepEqual(messages.at(-1), SUCCESS);
  const payloads = messages.slice(0, -1).map((message) => String(message.data).split(' ')[0]);
  t.deepEqual(payloads, [...range(0, 1000).map(String), 'live']);
  t.is(session.dropped, 0);
});
