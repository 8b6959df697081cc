/**
 * Slow consumers, over real TCP sockets: a connection that stops
 * reading has a bounded outbound buffer; past it, its messages are dropped
 * (policy `drop`) or it is closed (policy `disconnect`), and nobody else
 * notices.
 */
import test, { type ExecutionContext } from 'ava';
import { eventually, LineClient, startTestServer, type LogLines, withoutId } from './helpers/server.ts';
import { watchConnections, type Watched } from './helpers/watch.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>['server'];

const LIMIT = 64 * 1024;
/** At least this many messages are published… */
const MESSAGES = 4000;
/**
 * …and more if need be, until the slow subscriber has overflowed: the
 * kernel buffers in front of a client that does not read can hold several
 * megabytes (about 4 MB here), more on hosts tuned for it. This caps the run.
 */
const MAX_MESSAGES = 40_000;
/**
 * Messages per publisher write. The fast subscriber runs in this same
 * process, so a burst bigger than its own 64 KiB budget could legitimately
 * overflow it before it gets a turn to read; a burst of about 32 KiB cannot.
 */
const BATCH = 16;
const PAD = 'x'.repeat(2000);

function watchedOf(watched: Map<number, Watched>, client: LineClient): Watched {
  const entry = watched.get(client.socket.localPort!);
  if (!entry) throw new Error(`no server-side session for local port ${client.socket.localPort}`);
  return entry;
}

interface Scene {
  server: Server;
  logs: LogLines;
  watched: Map<number, Watched>;
  fast: LineClient;
  slow: LineClient;
  publisher: LineClient;
}

/**
 * A server with a 64 KiB outbound budget per connection, a fast subscriber
 * to `feed`, a slow one to `{feed,slow}` that stops reading right after its
 * subscribe reply, and a publisher.
 */
async function scene(t: ExecutionContext, policy: 'drop' | 'disconnect'): Promise<Scene> {
  const { server, logs } = await startTestServer(t, { limits: { maxBufferedBytes: LIMIT, slowConsumerPolicy: policy } });
  const watched = watchConnections(server);
  const url = server.url('tcp');
  const fast = await LineClient.connect(t, url);
  t.deepEqual(await fast.request({ command: 'subscribe', tags: ['feed'] }), { command: 'subscribe', tags: ['feed'], data: 'success' });
  const slow = await LineClient.connect(t, url);
  t.deepEqual(await slow.request({ command: 'subscribe', tags: ['slow', 'feed'] }), {
    command: 'subscribe',
    tags: ['slow', 'feed'],
    data: 'success',
  });
  slow.socket.pause();
  const publisher = await LineClient.connect(t, url);
  t.is(server.broker.subscriptionCount, 2);
  return { server, logs, watched, fast, slow, publisher };
}

/**
 * Publishes messages of about 2 KB tagged {feed,slow} in bursts, at least
 * MESSAGES of them, then MESSAGES / 4 more at a time while the slow
 * subscriber has not overflowed yet; after each burst the fast subscriber must
 * have every message of it, in order, before the next burst goes.
 * Returns how many were published.
 */
async function flood(t: ExecutionContext, { server, fast, publisher }: Scene): Promise<number> {
  const overflowed = () => server.connections.delivery.dropped + server.connections.delivery.disconnectedSlow > 0;
  let ok = true;
  let seq = 0;
  let until = MESSAGES;
  while (seq < until) {
    let text = '';
    const first = seq;
    for (; seq < first + BATCH; seq++) {
      text += JSON.stringify({ command: 'publish', tags: ['feed', 'slow'], data: { seq, pad: PAD } }) + '\n';
    }
    publisher.write(text);
    for (let expected = first; expected < seq; expected++) {
      const message = await fast.next();
      const data = message.data as { seq: number; pad: string };
      if (data.seq !== expected || data.pad !== PAD) ok = false;
    }
    if (seq >= until && !overflowed() && until < MAX_MESSAGES) until = Math.min(seq + MESSAGES / 4, MAX_MESSAGES);
  }
  t.true(overflowed(), `the slow subscriber overflowed within ${seq} messages`);
  t.true(ok, 'the fast subscriber got every message, whole and in order');
  // The publisher was never held back: it still answers, with nothing else queued for it.
  await publisher.sync();
  t.is(publisher.pending, 0);
  await fast.sync();
  t.is(fast.pending, 0, 'the fast subscriber got nothing more');
  return seq;
}

/** Sends a ping and returns every line received before its reply. */
async function linesBeforePong(client: LineClient): Promise<string[]> {
  client.send({ command: 'ping' });
  const lines: string[] = [];
  for (;;) {
    const line = await client.nextLine();
    if (line === '{"command":"ping","tags":[],"data":"pong"}') return lines;
    lines.push(line);
  }
}

test('policy drop: a subscriber that stops reading loses messages, the fast one beside it gets every one in order', async (t) => {
  const s = await scene(t, 'drop');
  const published = await flood(t, s);
  const { server, watched } = s;
  const slow = watchedOf(watched, s.slow);
  const fast = watchedOf(watched, s.fast);

  t.true(server.connections.delivery.dropped > 0, 'messages for the slow subscriber were dropped');
  t.is(server.connections.delivery.dropped, slow.session.dropped, 'every drop was the slow subscriber’s');
  t.is(fast.session.dropped, 0);
  t.is(server.connections.delivery.disconnectedSlow, 0);
  t.true(slow.session.isOpen, 'under drop, the slow subscriber stays connected');
  t.is(server.connections.count, 3);
  t.is(server.broker.stats.published, published);

  // When it goes, the drops are logged as a warning, for operators.
  s.slow.close();
  await eventually(() => s.logs.some((line) => line.msg === 'slow consumer: messages were dropped'), WAIT_MS, 'the warning');
  const warning = s.logs.find((line) => line.msg === 'slow consumer: messages were dropped')!;
  t.is(warning.level, 'warn');
  t.is(warning.dropped, slow.session.dropped);
});

test('policy drop: the slow connection’s server-side buffer never exceeds the limit by more than one message', async (t) => {
  const s = await scene(t, 'drop');
  await flood(t, s);
  const slow = watchedOf(s.watched, s.slow);
  t.true(slow.session.dropped > 0);
  t.true(slow.maxFrame > 2000 && slow.maxFrame < 2100, `frames of about 2 KB (${slow.maxFrame})`);
  t.true(slow.maxBuffered <= LIMIT + slow.maxFrame, `buffered at most ${slow.maxBuffered} bytes`);
  // The bound was reached, so it was really put to the test.
  t.true(slow.maxBuffered > LIMIT - slow.maxFrame, `buffered up to ${slow.maxBuffered} bytes`);
  t.true(slow.sink.bufferedBytes <= LIMIT + slow.maxFrame);
  // The fast one, reading all along, stayed well inside its budget.
  t.true(watchedOf(s.watched, s.fast).maxBuffered <= LIMIT);
});

test('policy drop: once it reads again, the slow subscriber gets whole lines only, and every message is either received or counted dropped', async (t) => {
  const s = await scene(t, 'drop');
  const published = await flood(t, s);
  const slow = watchedOf(s.watched, s.slow);
  const dropped = slow.session.dropped;
  t.true(dropped > 0);

  s.slow.socket.resume();
  // With its buffer drained, the ping's reply cannot be dropped in turn.
  await eventually(() => slow.sink.bufferedBytes === 0, WAIT_MS, 'the slow connection drained');
  const lines = await linesBeforePong(s.slow);
  t.is(slow.session.dropped, dropped, 'nothing more dropped while catching up');

  let previous = -1;
  let whole = true;
  for (const line of lines) {
    let message: { command?: unknown; tags?: unknown; data?: { seq?: unknown; pad?: unknown } };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      whole = false;
      continue;
    }
    const seq = message.data?.seq;
    if (message.command !== 'publish' || message.data?.pad !== PAD || typeof seq !== 'number' || seq <= previous) whole = false;
    else previous = seq;
  }
  t.true(whole, 'every line is one whole publish message, in publishing order');
  t.true(lines.length > 0, 'it got the messages that fitted');
  t.is(lines.length + dropped, published, 'each message was delivered whole or dropped whole');
  // And the connection is fully usable again.
  t.deepEqual(await s.slow.request({ command: 'list' }), { command: 'list', data: '[["feed","slow"]]' });
  s.publisher.send({ command: 'publish', tags: ['slow', 'feed'], data: 'caught up' });
  t.deepEqual(withoutId(await s.slow.next()), { command: 'publish', tags: ['slow', 'feed'], data: 'caught up' });
  t.like(await s.fast.next(), { data: 'caught up' });
});

test('policy disconnect: the server closes a subscriber that stops reading, the fast one still gets everything', async (t) => {
  const s = await scene(t, 'disconnect');
  const published = await flood(t, s);
  const { server } = s;
  const slow = watchedOf(s.watched, s.slow);

  t.is(server.connections.delivery.disconnectedSlow, 1, 'counted once');
  t.like(
    s.logs.find((line) => line.msg === 'slow consumer: disconnected'),
    { level: 'warn' },
    'the disconnect is logged as a warning',
  );
  t.is(server.connections.delivery.dropped, 0, 'nothing dropped: the connection went instead');
  t.false(slow.session.isOpen);
  t.is(server.connections.count, 2);
  t.is(server.broker.subscriptionCount, 1, 'the slow subscriber’s subscription is gone');
  t.is(watchedOf(s.watched, s.fast).session.dropped, 0);

  // The client sees the close once it reads again (a paused socket notices nothing).
  s.slow.socket.resume();
  await s.slow.waitClosed();
  // Whatever it did get before the close is whole publish lines, in order.
  let previous = -1;
  while (s.slow.pending > 0) {
    const message = JSON.parse(await s.slow.nextLine()) as { command: string; data: { seq: number } };
    t.is(message.command, 'publish');
    t.true(message.data.seq > previous);
    previous = message.data.seq;
  }
  t.true(previous < published - 1, 'it did not get everything');

  // The server goes on serving the others.
  s.publisher.send({ command: 'publish', tags: ['feed'], data: 'after' });
  t.like(await s.fast.next(), { data: 'after' });
  await s.fast.sync();
});

// ---------------------------------------------------------------------------
// Replies: never dropped; a client that does not read them is held back instead.

const PONG = '{"command":"ping","tags":[],"data":"pong"}';

const REPLY_LIMIT = 16 * 1024;

for (const policy of ['drop', 'disconnect'] as const) {
  test(`policy ${policy}: pipelined pings from a client that reads nothing all get their pong once it reads, and the server holds back its input meanwhile`, async (t) => {
    const { server } = await startTestServer(t, { limits: { maxBufferedBytes: REPLY_LIMIT, slowConsumerPolicy: policy } });
    const watched = watchConnections(server);
    const client = await LineClient.connect(t, server.url('tcp'));
    client.socket.pause();
    await eventually(() => watched.has(client.socket.localPort!), WAIT_MS, 'the session opened');
    const entry = watchedOf(watched, client);
    // The kernel's socket buffers take megabytes first: ping until replies pile up in the server.
    // The server takes a read a slice a turn, so write the next batch once the kernel has taken the last.
    let sent = 0;
    while (entry.sink.bufferedBytes <= REPLY_LIMIT && sent < 2_000_000) {
      if (client.socket.writableLength === 0) {
        client.write('{"command":"ping"}\n'.repeat(10_000));
        sent += 10_000;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    t.true(entry.sink.bufferedBytes > REPLY_LIMIT, `replies piled up after ${sent} pings`);
    client.socket.resume();
    for (let i = 0; i < sent; i++) {
      const line = await client.nextLine();
      if (line !== PONG) return t.fail(`reply ${i} was ${line}`);
    }
    await client.sync();
    t.is(client.pending, 0);
    t.is(server.connections.delivery.dropped, 0);
    t.is(server.connections.delivery.disconnectedSlow, 0);
    // Held back, the server queued at most one reply past the limit: the rest of a read waits its turn.
    t.true(entry.maxBuffered <= REPLY_LIMIT + PONG.length + 1, `at most ${entry.maxBuffered} bytes queued`);
  });
}

test('one read of cheap requests with large replies queues at most one reply past the limit, and every reply comes once the client reads', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxBufferedBytes: REPLY_LIMIT } });
  const watched = watchConnections(server);
  const client = await LineClient.connect(t, server.url('tcp'));
  // Subscriptions whose `list` reply is about 10 KB: one 38 KB read of requests asks for 20 MB of replies.
  for (let i = 0; i < 10; i++) {
    const tags = Array.from({ length: 8 }, (_, j) => `${i}-${j}-${'x'.repeat(100)}`);
    t.is((await client.request({ command: 'subscribe', tags })).data, 'success');
  }
  client.write('{"command":"list"}\n');
  const listReply = (await client.nextLine()).length + 1;
  client.socket.pause();
  const entry = watchedOf(watched, client);
  const lists = 2000;
  client.write('{"command":"list"}\n'.repeat(lists));
  await eventually(() => entry.sink.bufferedBytes > REPLY_LIMIT, WAIT_MS, 'replies piled up');
  // Give the server time to (wrongly) run the rest of the read.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.true(entry.maxBuffered <= REPLY_LIMIT + listReply, `${entry.maxBuffered} bytes queued, limit ${REPLY_LIMIT}, one reply ${listReply}`);
  client.socket.resume();
  for (let i = 0; i < lists; i++) t.is((await client.next()).command, 'list');
  await client.sync();
});

test('a reply larger than maxBufferedBytes reaches a client that reads', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxBufferedBytes: 1024, slowConsumerPolicy: 'disconnect' } });
  const client = await LineClient.connect(t, server.url('tcp'));
  const tags = Array.from({ length: 60 }, (_, i) => `a-rather-long-tag-name-number-${String(i).padStart(2, '0')}`);
  t.like(await client.request({ command: 'subscribe', tags }), { data: 'success' });
  const reply = await client.request({ command: 'list' });
  t.true(JSON.stringify(reply).length > 1024);
  t.deepEqual(JSON.parse(reply.data as string), [[...tags].sort()]);
  t.is(server.connections.delivery.disconnectedSlow, 0);
});

test('a published message larger than maxBufferedBytes reaches a subscriber that keeps up', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxBufferedBytes: 1024 } });
  const sub = await LineClient.connect(t, server.url('tcp'));
  t.like(await sub.request({ command: 'subscribe', tags: ['big'] }), { data: 'success' });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const data = 'x'.repeat(4096);
  publisher.send({ command: 'publish', tags: ['big'], data });
  await publisher.sync();
  t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['big'], data });
  t.is(server.connections.delivery.dropped, 0);
});
