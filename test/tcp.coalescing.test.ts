/**
 * Coalesced writes over real TCP sockets: what one event-loop turn queues for
 * a connection goes out in one write, in order, replies and deliveries alike;
 * `limits.flushIntervalMs` batches over a bounded delay instead.
 */
import test from 'ava';
import { stat } from 'node:fs';
import { Socket } from 'node:net';
import { FlushScheduler, OutputQueue, type Flushable } from '../core/flush.ts';
import { burstPastTheLimit } from './helpers/bursts.ts';
import { LineClient, startTestServer, withoutId } from './helpers/server.ts';

/**
 * Counts the server's socket writes to the connection whose remote port is
 * `port` while `during` runs. Client and server share this process; the
 * server's sockets are the ones whose remotePort is the client's local port.
 */
async function countWrites(port: number, during: () => Promise<void>): Promise<number> {
  const write = Socket.prototype.write;
  let writes = 0;
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (this.remotePort === port) writes++;
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  try {
    await during();
  } finally {
    Socket.prototype.write = write;
  }
  return writes;
}

test('a burst of publishes reaches a subscriber in order, in one write per event-loop turn rather than one per message', async (t) => {
  const { server } = await startTestServer(t);
  const sub = await LineClient.connect(t, server.url('tcp'));
  t.like(await sub.request({ command: 'subscribe', tags: ['burst'] }), { data: 'success' });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const COUNT = 200;
  const text = Array.from({ length: COUNT }, (_, seq) => JSON.stringify({ command: 'publish', tags: ['burst'], data: seq }) + '\n').join('');
  const writes = await countWrites(sub.socket.localPort!, async () => {
    publisher.write(text);
    for (let seq = 0; seq < COUNT; seq++) t.deepEqual(withoutId(await sub.next()), { command: 'publish', tags: ['burst'], data: seq });
  });
  // 200 lines of ~45 bytes arrive in one or a few reads; each read's deliveries go out as one write.
  t.true(writes >= 1 && writes <= 10, `${writes} writes for ${COUNT} messages`);
});

test('replies and deliveries keep their order on one connection', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  const publisher = await LineClient.connect(t, server.url('tcp'));
  t.like(await client.request({ command: 'subscribe', tags: ['x'] }), { data: 'success' });
  // In one turn: a publish to the client, its ping, another publish, a subscribe, a third publish.
  publisher.write(JSON.stringify({ command: 'publish', tags: ['x'], data: 1 }) + '\n');
  await publisher.sync();
  client.write('{"command":"ping"}\n{"command":"subscribe","tags":["y"]}\n');
  t.deepEqual(withoutId(await client.next()), { command: 'publish', tags: ['x'], data: 1 });
  t.deepEqual(await client.next(), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await client.next(), { command: 'subscribe', tags: ['y'], data: 'success' });
  publisher.write(
    [{ data: 2 }, { data: 3 }].map(({ data }) => JSON.stringify({ command: 'publish', tags: ['x', 'y'], data }) + '\n').join(''),
  );
  t.like(await client.next(), { data: 2 });
  t.like(await client.next(), { data: 3 });
  await client.sync();
  t.is(client.pending, 0);
});

test('with limits.flushIntervalMs, messages still arrive, in order, within about that interval', async (t) => {
  const { server } = await startTestServer(t, { limits: { flushIntervalMs: 20 } });
  const sub = await LineClient.connect(t, server.url('tcp'));
  t.like(await sub.request({ command: 'subscribe', tags: ['d'] }), { data: 'success' });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const started = Date.now();
  const writes = await countWrites(sub.socket.localPort!, async () => {
    // Three publishes in separate turns inside one interval: the first goes at once (after a quiet spell), the other two together.
    for (let seq = 0; seq < 3; seq++) {
      publisher.send({ command: 'publish', tags: ['d'], data: seq });
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let seq = 0; seq < 3; seq++) t.like(await sub.next(), { data: seq });
  });
  t.true(Date.now() - started < 2000);
  t.true(writes <= 2, `${writes} writes`);
});

test('a closing connection gets what was queued before it closes', async (t) => {
  const { server } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  // The replies are queued in the turn the client's end arrives in, then the session ends.
  client.write('{"command":"ping"}\n{"command":"ping"}\n');
  client.socket.end();
  t.like(await client.next(), { data: 'pong' });
  t.like(await client.next(), { data: 'pong' });
  await client.waitClosed();
});

test('FlushScheduler flushes each registered sink once per turn, and a sink registered during a flush in the next one', async (t) => {
  const scheduler = new FlushScheduler(0);
  const flushed: string[] = [];
  const again: Flushable = { flush: () => flushed.push('again') };
  const a: Flushable = {
    flush: () => {
      flushed.push('a');
      if (flushed.length === 1) scheduler.add(again);
    },
  };
  const b: Flushable = { flush: () => flushed.push('b') };
  scheduler.add(a);
  scheduler.add(b);
  t.deepEqual(flushed, [], 'nothing is flushed synchronously');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(flushed, ['a', 'b']);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(flushed, ['a', 'b', 'again']);
});

test('OutputQueue: what is pushed between two flushes goes to its writer as one buffer, in order; length counts it; clear drops it', async (t) => {
  const scheduler = new FlushScheduler(0);
  const written: string[] = [];
  const output = new OutputQueue(scheduler, (bytes) => written.push(bytes.toString()));
  output.push(Buffer.from('a'));
  output.push(Buffer.from('bc'));
  t.is(output.length, 3);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(written, ['abc'], 'one write for the turn');
  t.is(output.length, 0);
  output.push(Buffer.from('d'));
  output.clear();
  await new Promise((resolve) => setImmediate(resolve));
  output.flush();
  t.deepEqual(written, ['abc'], 'nothing written after clear, and an empty queue writes nothing');
  output.push(Buffer.from('e'));
  output.flush();
  t.deepEqual(written, ['abc', 'e'], 'flush writes at once');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(written, ['abc', 'e'], 'and the scheduled flush finds nothing left');
});

test('FlushScheduler with an interval: the first batch after a quiet spell goes at the end of the turn, the next one an interval after it', async (t) => {
  const scheduler = new FlushScheduler(50);
  const flushed: Array<{ name: string; at: number }> = [];
  const started = performance.now();
  const sink = (name: string): Flushable => ({ flush: () => flushed.push({ name, at: performance.now() - started }) });
  scheduler.add(sink('first'));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    flushed.map((f) => f.name),
    ['first'],
    'after a quiet spell: the end of the turn',
  );
  scheduler.add(sink('second'));
  scheduler.add(sink('third'));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(flushed.length, 1, 'within the interval: held back');
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.deepEqual(
    flushed.map((f) => f.name),
    ['first', 'second', 'third'],
  );
  t.true(flushed[1]!.at - flushed[0]!.at >= 45, `an interval later (${flushed[1]!.at - flushed[0]!.at} ms)`);
});

// Serial: it holds the thread past an interval, which would upset the timing of the tests running beside it.
test.serial('FlushScheduler: a batch that comes due goes at the end of the first turn that queues more, not at the timer’s later tick', async (t) => {
  // Long enough that the file-system call of pollPhase() cannot outlast it on a loaded machine and let the timer go first.
  const INTERVAL = 200;
  const scheduler = new FlushScheduler(INTERVAL);
  const flushed: string[] = [];
  const sink = (name: string): Flushable => ({ flush: () => flushed.push(name) });
  /** Resumes in the poll phase (an I/O callback): a setImmediate made there runs before the next timers phase. */
  const pollPhase = () => new Promise((resolve) => stat('.', resolve));
  /** Holds this thread, as a long turn would, without burning a core meanwhile. */
  const blockFor = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  scheduler.add(sink('first'));
  await new Promise((resolve) => setImmediate(resolve));
  scheduler.add(sink('second'));
  await pollPhase();
  blockFor(INTERVAL + 5);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(flushed, ['first'], 'left alone, the due batch waits for the timer');
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.deepEqual(flushed, ['first', 'second']);

  const touched = new FlushScheduler(INTERVAL);
  flushed.length = 0;
  touched.add(sink('first'));
  await new Promise((resolve) => setImmediate(resolve));
  touched.add(sink('second'));
  await pollPhase();
  touched.touch();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(flushed, ['first'], 'touched before it is due: still held back');
  await pollPhase();
  blockFor(INTERVAL + 5);
  touched.touch();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(flushed, ['first', 'second'], 'touched once due: flushed at the end of that turn');
});

test('bytes queued for the next flush count towards maxBufferedBytes: a burst bigger than the limit within one flush is partly dropped, in order', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxBufferedBytes: 1024, flushIntervalMs: 50 } });
  const sub = await LineClient.connect(t, server.url('tcp'));
  t.like(await sub.request({ command: 'subscribe', tags: ['q'] }), { data: 'success' });
  await burstPastTheLimit(t, server, sub);
});
