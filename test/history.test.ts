/**
 * History: every publish gets an id, carried on what subscribers receive,
 * and the newest messages are retained within their bounds (count, bytes,
 * age). Resuming from it: test/resume.*.test.ts.
 */
import test from 'ava';
import { History } from '../core/history.ts';
import type { Message } from '../core/protocol.ts';
import { DEFAULT_HISTORY } from '../host/defaults.ts';
import { LineClient, startTestServer } from './helpers/server.ts';

const ID = /^[0-9a-z]+-[1-9a-z][0-9a-z]*$/;

function history(limits: Partial<typeof DEFAULT_HISTORY> = {}): History {
  return new History({ ...DEFAULT_HISTORY, ...limits });
}

function publishMany(h: History, count: number, data = '"x"'): void {
  for (let i = 0; i < count; i++) h.record(1, ['a'], data);
}

test('each publish gets the next id of this start; ids of another start, or that were never issued, name nothing', (t) => {
  const h = history();
  const ids = [h.record(1, ['a'], '1'), h.record(1, ['a'], '2'), h.record(2, ['b'], undefined)].map((frame) => frame.id!);
  for (const id of ids) t.regex(id, ID);
  t.deepEqual(ids.map((id) => h.seqOf(id)), [1, 2, 3]);
  t.is(h.lastSeq, 3);
  t.is(h.record(1, ['a'], '"x"').json, `{"command":"publish","tags":["a"],"data":"x","id":"${h.at(4)!.frame.id}"}`);
  const other = history();
  other.record(1, ['a'], '1');
  t.is(h.seqOf(other.at(1)!.frame.id!), undefined, 'another start: another epoch');
  const prefix = ids[0]!.slice(0, ids[0]!.indexOf('-') + 1);
  t.is(h.seqOf(`${prefix}4`), 4);
  for (const id of [`${prefix}99`, `${prefix}0`, `${prefix}01`, `${prefix}1.5`, `${prefix}`, 'x', '', `${prefix}1e3`, `${prefix}A`, `${prefix}-1`]) {
    t.is(h.seqOf(id), undefined, id);
  }
  publishMany(h, 40);
  t.is(h.at(44)!.frame.id, `${prefix}18`, 'base 36');
  t.is(h.seqOf(`${prefix}18`), 44);
});

test('history keeps at most maxMessages, the newest', (t) => {
  const h = history({ maxMessages: 100 });
  publishMany(h, 250);
  t.is(h.size, 100);
  t.is(h.firstSeq, 151);
  t.is(h.at(150), undefined);
  t.is(h.at(151)!.seq, 151);
  t.is(h.at(250)!.seq, 250);
});

test('history keeps at most maxBytes of encoded messages; one message larger than that is not kept', (t) => {
  const h = history({ maxBytes: 10_000 });
  publishMany(h, 1000, JSON.stringify('y'.repeat(100)));
  let sum = 0;
  for (let seq = h.firstSeq; seq <= h.lastSeq; seq++) sum += h.at(seq)!.frame.byteLength;
  t.is(h.bytes, sum);
  t.true(h.bytes <= 10_000);
  t.true(h.bytes + h.at(h.lastSeq)!.frame.byteLength > 10_000, 'one more would not fit');
  h.record(1, ['a'], JSON.stringify('z'.repeat(20_000)));
  t.is(h.size, 0);
  t.is(h.bytes, 0);
  t.is(h.firstSeq, h.lastSeq + 1, 'nothing is retained: the next message would be the first');
});

test('history drops messages older than maxAgeMs', (t) => {
  const h = history({ maxAgeMs: 60_000 });
  publishMany(h, 10);
  t.is(h.size, 10);
  h.trim(Date.now() + 60_001);
  t.is(h.size, 0);
  t.is(h.firstSeq, 11);
});

test('history: false gives no ids and keeps nothing', (t) => {
  const h = new History(false);
  const frame = h.record(1, ['a'], '"x"');
  t.is(frame.id, undefined);
  t.is(frame.json, '{"command":"publish","tags":["a"],"data":"x"}');
  t.is(h.size, 0);
  t.is(h.seqOf('anything-1'), undefined);
});

async function subscriber(t: Parameters<typeof startTestServer>[0], url: string, tags: string[]): Promise<LineClient> {
  const client = await LineClient.connect(t, url);
  await client.request({ command: 'subscribe', tags });
  return client;
}

test('over TCP, every subscriber of a message gets it with the same id, and ids follow publish order', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const one = await subscriber(t, url, ['a']);
  const two = await subscriber(t, url, ['a', 'b']);
  const publisher = await LineClient.connect(t, url);
  for (let i = 0; i < 5; i++) publisher.send({ command: 'publish', tags: ['a', 'b'], data: i });
  const first: Message[] = [];
  for (let i = 0; i < 5; i++) first.push(await one.next());
  for (const message of first) t.deepEqual(await two.next(), message);
  t.deepEqual(
    first.map((message) => server.history.seqOf(message.id!)),
    [1, 2, 3, 4, 5],
  );
  t.deepEqual(first.map((message) => message.data), [0, 1, 2, 3, 4]);
});

test('over TCP with history: false, messages carry no id', async (t) => {
  const { server } = await startTestServer(t, { history: false });
  const sub = await subscriber(t, server.url('tcp'), ['a']);
  (await LineClient.connect(t, server.url('tcp'))).send({ command: 'publish', tags: ['a'], data: 'x' });
  t.is(await sub.nextLine(), '{"command":"publish","tags":["a"],"data":"x"}');
  t.is(server.history.size, 0);
});

test('retention holds under load: 20,000 publishes leave maxMessages retained and memory within maxBytes', async (t) => {
  const { server } = await startTestServer(t, { history: { maxMessages: 5000, maxBytes: 200_000 } });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const data = 'p'.repeat(50);
  let batch = '';
  for (let i = 0; i < 20_000; i++) batch += JSON.stringify({ command: 'publish', tags: ['load', `n${i % 7}`], data }) + '\n';
  publisher.write(batch);
  await publisher.sync();
  t.is(server.history.lastSeq, 20_000);
  t.true(server.history.bytes <= 200_000, `${server.history.bytes} bytes`);
  t.true(server.history.size > 1000 && server.history.size < 5000, `${server.history.size} messages: maxBytes bites first`);
  t.is(server.history.firstSeq, 20_000 - server.history.size + 1);
});
