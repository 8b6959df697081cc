/**
 * Reading shared among connections (host/read-turns.ts): once an
 * event-loop turn has read its fill, a connection that read more than its
 * share waits for a later turn; small readers never wait. The scheduler on
 * its own, then over real sockets: connections pouring in input are held
 * and resumed without losing, reordering or repeating anything, beside a
 * connection whose session holds it too.
 */
import test from 'ava';
import { CHUNK, ReadTurns, SHARE, TURN_BYTES, type Holdable } from '../host/read-turns.ts';
import { LineClient, startTestServer } from './helpers/server.ts';

/** A connection that records whether it is held. */
class Recorder implements Holdable {
  held = false;
  resumes = 0;
  hold(): void {
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

test('connections pouring in publishes are held and resumed: every message arrives once and in order, and the holds are counted', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const subscriber = await LineClient.connect(t, url);
  await subscriber.request({ command: 'subscribe', tags: ['pour'] });
  const publishers = await Promise.all(Array.from({ length: 20 }, () => LineClient.connect(t, url)));
  const perPublisher = 2000;
  const pad = 'x'.repeat(200);
  // 20 × 2,000 lines of ~270 bytes, each publisher's in one write: ~10 MB arriving at once.
  publishers.forEach((publisher, p) => {
    const lines = Array.from({ length: perPublisher }, (_, n) => JSON.stringify({ command: 'publish', tags: ['pour'], data: { p, n, pad } }) + '\n');
    publisher.write(lines.join(''));
  });
  const next = new Array<number>(publishers.length).fill(0);
  for (let i = 0; i < publishers.length * perPublisher; i++) {
    const { data } = (await subscriber.next()) as { data: { p: number; n: number } };
    t.is(data.n, next[data.p]!, `publisher ${data.p}'s messages in order, none lost or repeated`);
    next[data.p]!++;
  }
  for (const publisher of publishers) await publisher.sync();
  t.is(subscriber.pending, 0, 'nothing more');
  t.true(server.broker.stats.published === publishers.length * perPublisher);
  t.regex(await server.metrics.render(), /^mist_input_holds_total [1-9]\d*$/m);
});

test('a connection held by its session (replies piling up) and by the turns reads on once both let go', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const pinger = await LineClient.connect(t, url);
  // It reads nothing while it writes: its pongs pile up until the server stops reading it.
  pinger.socket.pause();
  const pings = 60_000;
  pinger.write('{"command":"ping"}\n'.repeat(pings));
  // Others fill the turns meanwhile.
  const pourers = await Promise.all(Array.from({ length: 8 }, () => LineClient.connect(t, url)));
  for (const pourer of pourers) pourer.write(`{"command":"publish","tags":["nobody"],"data":"${'y'.repeat(400_000)}"}\n`.repeat(4));
  for (const pourer of pourers) await pourer.sync();
  pinger.socket.resume();
  for (let i = 0; i < pings; i++) t.is((await pinger.next()).data, 'pong');
  await pinger.sync();
  t.is(pinger.pending, 0);
});
