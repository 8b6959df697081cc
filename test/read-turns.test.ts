/**
 * Reading shared among connections (host/read-turns.ts): once an
 * event-loop turn has read its fill, a connection that read more than its
 * share waits for a later turn; small readers never wait. The scheduler on
 * its own, then over real sockets: connections pouring in input are held
 * and resumed without losing, reordering or repeating anything, over TCP
 * and WebSocket, beside a connection whose session holds it too.
 */
import test, { type ExecutionContext } from 'ava';
import { CHUNK, ReadTurns, SHARE, TURN_BYTES, type Pausable } from '../host/read-turns.ts';
import type { MistServer } from '../host/server.ts';
import { eventually, LineClient, startTestServer } from './helpers/server.ts';
import { websocketUrl, WsClient } from './helpers/web.ts';

/** A connection that records whether it is held. */
class Recorder implements Pausable {
  held = false;
  resumes = 0;
  pause(): void {
    this.held = true;
  }
  resume(): void {
    this.held = false;
    this.resumes++;
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('a turn under its fill holds nobody, however much one connection reads', async (t) => {
  const turns = new ReadTurns();
  const big = new Recorder();
  turns.reader(big).read(TURN_BYTES);
  t.false(big.held);
  t.is(turns.holds, 0);
  await nextTurn();
});

test('past the turn\'s fill, a connection over its share is held and resumed in a later turn; a small one is not held', async (t) => {
  const turns = new ReadTurns();
  const [filler, heavy, small] = [new Recorder(), new Recorder(), new Recorder()];
  turns.reader(filler).read(TURN_BYTES);
  const heavyReader = turns.reader(heavy);
  heavyReader.read(SHARE);
  t.false(heavy.held, 'within its share');
  heavyReader.read(1);
  t.true(heavy.held, 'over its share');
  const smallReader = turns.reader(small);
  for (let i = 0; i < 100; i++) smallReader.read(20);
  t.false(small.held, 'pings and publishes never wait');
  t.false(filler.held, 'it filled the turn without going past its fill');
  t.is(turns.holds, 1);
  await nextTurn();
  t.false(heavy.held);
  t.is(heavy.resumes, 1);
});

test('held connections are resumed first held first, a turn\'s worth at a time; one closed meanwhile is skipped', async (t) => {
  const turns = new ReadTurns();
  const perTurn = TURN_BYTES / CHUNK;
  const connections = Array.from({ length: 2 * perTurn + 3 }, () => new Recorder());
  const readers = connections.map((connection) => turns.reader(connection));
  turns.reader(new Recorder()).read(TURN_BYTES);
  for (const reader of readers) reader.read(CHUNK);
  t.true(connections.every((connection) => connection.held));
  readers[0]!.close();

  await nextTurn();
  t.is(connections[0]!.resumes, 0, 'closed: not resumed');
  t.deepEqual(
    connections.map((connection) => connection.resumes),
    connections.map((_, i) => (i >= 1 && i <= perTurn ? 1 : 0)),
    'the next turn resumes the first held, as many as a turn reads',
  );
  // Nothing is read meanwhile (every heavy reader is held): the queue moves on all the same.
  await nextTurn();
  await nextTurn();
  t.true(connections.slice(1).every((connection) => connection.resumes === 1 && !connection.held));
  t.is(turns.holds, connections.length);
});

/**
 * Makes every turn of `server` a busy one, as if other connections had
 * read its fill already: whatever reads more than a share waits. (Which
 * turns real clients fill depends on how far the kernel lets them get ahead
 * of the server; this way the holds do not.)
 */
function busyTurns(t: ExecutionContext, server: MistServer): void {
  // Timers run before the poll phase that reads: each fills the turn about to read.
  const timer = setInterval(() => server.readTurns.count(TURN_BYTES), 1);
  t.teardown(() => clearInterval(timer));
}

/** A client of either transport, as the tests below use it. */
type Client = Pick<LineClient, 'next' | 'sync' | 'pending'>;

/**
 * Checks that `subscriber` got each publisher's `perPublisher` messages
 * (`data: {p, n}`) once and in order, nothing more, and that reading was held.
 */
async function expectPoured(t: ExecutionContext, server: MistServer, subscriber: Client, publishers: Client[], perPublisher: number): Promise<void> {
  const next = new Array<number>(publishers.length).fill(0);
  for (let i = 0; i < publishers.length * perPublisher; i++) {
    const { data } = (await subscriber.next()) as { data: { p: number; n: number } };
    t.is(data.n, next[data.p]!, `publisher ${data.p}'s messages in order, none lost or repeated`);
    next[data.p]!++;
  }
  for (const publisher of publishers) await publisher.sync();
  t.is(subscriber.pending, 0, 'nothing more');
  t.is(server.broker.stats.published, publishers.length * perPublisher);
  t.regex(await server.metrics.render(), /^mist_input_holds_total [1-9]\d*$/m);
}

test('connections pouring in publishes in busy turns are held and resumed: every message arrives once and in order, and the holds are counted', async (t) => {
  const { server } = await startTestServer(t);
  busyTurns(t, server);
  const url = server.url('tcp');
  const subscriber = await LineClient.connect(t, url);
  await subscriber.request({ command: 'subscribe', tags: ['pour'] });
  const publishers = await Promise.all(Array.from({ length: 20 }, () => LineClient.connect(t, url)));
  const perPublisher = 250;
  const pad = 'x'.repeat(1000);
  // 20 × 250 lines of ~1 KB, each publisher's in one write.
  publishers.forEach((publisher, p) => {
    const lines = Array.from({ length: perPublisher }, (_, n) => JSON.stringify({ command: 'publish', tags: ['pour'], data: { p, n, pad } }) + '\n');
    publisher.write(lines.join(''));
  });
  await expectPoured(t, server, subscriber, publishers, perPublisher);
});

test('a connection held by its session (replies piling up) and by the turns reads on once both let go', async (t) => {
  const { server } = await startTestServer(t);
  busyTurns(t, server);
  const pinger = await LineClient.connect(t, server.url('tcp'));
  // It reads nothing while it writes: its pongs pile up until its session stops reading it, and in busy
  // turns its reads are held too.
  pinger.socket.pause();
  const pings = 60_000;
  pinger.write('{"command":"ping"}\n'.repeat(pings));
  await eventually(() => server.readTurns.holds > 0);
  pinger.socket.resume();
  for (let i = 0; i < pings; i++) t.is((await pinger.next()).data, 'pong');
  await pinger.sync();
  t.is(pinger.pending, 0);
});

test('WebSocket connections pouring in publishes in busy turns are held and resumed too: every message arrives once and in order', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['ws://127.0.0.1:0'] });
  busyTurns(t, server);
  const url = websocketUrl(server.url('ws'));
  const subscriber = await WsClient.connect(t, url);
  await subscriber.request({ command: 'subscribe', tags: ['pour'] });
  const publishers = await Promise.all(Array.from({ length: 10 }, () => WsClient.connect(t, url)));
  const perPublisher = 1000;
  const pad = 'x'.repeat(1000);
  // 10 × 1,000 frames of ~1 KB, all sent at once: ~10 MB.
  publishers.forEach((publisher, p) => {
    for (let n = 0; n < perPublisher; n++) publisher.send({ command: 'publish', tags: ['pour'], data: { p, n, pad } });
  });
  await expectPoured(t, server, subscriber, publishers, perPublisher);
});
