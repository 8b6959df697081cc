/**
 * Resume over WebSocket (the resume command) and Server-Sent Events
 * (`Last-Event-ID` or `lastEventId`, `event: gap`), over real sockets.
 * (TCP and the finer points of the replay: resume.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import type { Message } from '../core/protocol.ts';
import type { ConfigFile } from '../host/config-schema.ts';
import { ADMIN } from './helpers/auth.ts';
import { GAP, publishRange, range, resume, SUCCESS } from './helpers/resume.ts';
import { LineClient, startTestServer } from './helpers/server.ts';
import { SseClient, websocketUrl, WsClient } from './helpers/web.ts';

async function scene(t: ExecutionContext, config: ConfigFile = {}) {
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'ws://127.0.0.1:0', 'http://127.0.0.1:0'], ...config });
  const publisher = await LineClient.connect(t, server.url('tcp'));
  const ws = async (tags: string[]): Promise<WsClient> => {
    const client = await WsClient.connect(t, websocketUrl(server.url('ws')));
    t.is((await client.request({ command: 'subscribe', tags })).data, 'success');
    return client;
  };
  const sse = (query: string, headers: Record<string, string> = {}): Promise<SseClient> => SseClient.connect(t, server.url('http'), query, headers);
  /** The id of a message on `tags` that a subscriber received before it went away. */
  const seenId = async (tags: string[]): Promise<string> => {
    const client = await ws(tags);
    publisher.send({ command: 'publish', tags, data: 'seen' });
    const { id } = await client.next();
    client.close();
    return id!;
  };
  return { server, publisher, ws, sse, seenId };
}

const data = (messages: Message[]): unknown[] => messages.map((message) => message.data);

/** The next `count` events of an SSE stream. */
async function events(stream: SseClient, count: number): Promise<Array<Message & { event: string }>> {
  const received = [];
  for (let i = 0; i < count; i++) received.push(await stream.next());
  return received;
}

test('WebSocket: a subscriber drops, 100 messages are published, it resumes and gets exactly those 100 in order, then live ones', async (t) => {
  const { publisher, ws, seenId } = await scene(t);
  const id = await seenId(['news']);
  await publishRange(publisher, ['news'], 0, 100);
  const back = await ws(['news']);
  const { messages, reply } = await resume(back, id);
  t.deepEqual(reply, SUCCESS);
  t.deepEqual(data(messages), range(0, 100));
  publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
  t.is((await back.next()).data, 'live');
});

test('WebSocket: resume after retention passed answers gap with what remains; a bad id is an error', async (t) => {
  const { publisher, ws, seenId } = await scene(t, { history: { maxMessages: 10 } });
  const id = await seenId(['a']);
  await publishRange(publisher, ['a'], 0, 50);
  const back = await ws(['a']);
  const { messages, reply } = await resume(back, id);
  t.deepEqual(reply, GAP);
  t.deepEqual(data(messages), range(40, 50));
  t.deepEqual(await back.request({ command: 'resume', data: 7 }), { command: 'resume', error: '"data" must be a string' });
  await back.sync();
});

test('WebSocket: resume while messages keep being published: no duplicate, no hole', async (t) => {
  const { publisher, ws, seenId } = await scene(t);
  const id = await seenId(['n']);
  await publishRange(publisher, ['n'], 0, 5000);
  const back = await ws(['n']);
  back.send({ command: 'resume', data: id });
  let replied = false;
  const received: unknown[] = [];
  const reading = (async () => {
    while (received.at(-1) !== 'end') {
      const message = await back.next();
      if (message.command === 'resume') replied = message.data === 'success';
      else received.push(message.data);
    }
  })();
  let next = 5000;
  for (let after = 0; after < 5; after += replied ? 1 : 0, next += 50) await publishRange(publisher, ['n'], next, next + 50);
  publisher.send({ command: 'publish', tags: ['n'], data: 'end' });
  await reading;
  t.true(replied);
  t.deepEqual(received, [...range(0, next), 'end']);
});

test('SSE: every publish event carries id:, and Last-Event-ID resumes with exactly what was missed, then live ones', async (t) => {
  const { publisher, sse } = await scene(t);
  const first = await sse('?tags=news');
  publisher.send({ command: 'publish', tags: ['news'], data: 'seen' });
  const seen = await first.next();
  t.regex(seen.id!, /^[0-9a-z]+-1$/, 'the SSE client checks that the event id: is the message id');
  first.close();
  await publishRange(publisher, ['news'], 0, 100);

  const back = await sse('?tags=news', { 'last-event-id': seen.id! });
  const replayed = await events(back, 100);
  t.true(replayed.every((event) => event.event === 'publish'));
  t.deepEqual(data(replayed), range(0, 100));
  publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
  t.is((await back.next()).data, 'live');
  t.is(back.pending, 0);
});

test('SSE: the lastEventId parameter resumes too; the Last-Event-ID header wins over it', async (t) => {
  const { publisher, sse, seenId } = await scene(t);
  const id = await seenId(['a']);
  await publishRange(publisher, ['a'], 0, 3);
  const byParam = await sse(`?tags=a&lastEventId=${encodeURIComponent(id)}`);
  const replayed = await events(byParam, 3);
  t.deepEqual(data(replayed), [0, 1, 2]);
  const both = await sse(`?tags=a&lastEventId=${encodeURIComponent(id)}`, { 'last-event-id': replayed[1]!.id! });
  publisher.send({ command: 'publish', tags: ['a'], data: 'live' });
  t.deepEqual(data(await events(both, 2)), [2, 'live']);
});

test('SSE: resume after retention passed sends event: gap before what remains', async (t) => {
  const { publisher, sse, seenId } = await scene(t, { history: { maxMessages: 5 } });
  const id = await seenId(['a']);
  await publishRange(publisher, ['a'], 0, 20);
  const back = await sse('?tags=a', { 'last-event-id': id });
  const gap = await back.next();
  t.deepEqual(gap, { event: 'gap', ...GAP });
  t.deepEqual(data(await events(back, 5)), range(15, 20));
});

test('SSE: an id from before a restart, or with history off, gives event: gap', async (t) => {
  const { publisher, sse } = await scene(t, { history: false });
  const back = await sse('?tags=a', { 'last-event-id': 'abc-12' });
  t.deepEqual(await back.next(), { event: 'gap', ...GAP });
  publisher.send({ command: 'publish', tags: ['a'], data: 'no id' });
  t.deepEqual(await back.next(), { event: 'publish', command: 'publish', tags: ['a'], data: 'no id' });
});

test('SSE: a replay larger than the client buffer is written as the client reads it; live messages after it are not dropped', async (t) => {
  const { server, publisher, sse, seenId } = await scene(t, { limits: { maxBufferedBytes: 64 * 1024 } });
  const id = await seenId(['big']);
  // More than the kernel's socket buffers take at once.
  const body = 'b'.repeat(2000);
  for (let n = 0; n < 5000; n++) publisher.send({ command: 'publish', tags: ['big'], data: `${n} ${body}` });
  await publisher.sync();
  const back = await sse('?tags=big', { 'last-event-id': id });
  for (let n = 0; n < 20; n++) publisher.send({ command: 'publish', tags: ['big'], data: `live ${n}` });
  const received = (await events(back, 5020)).map((event) => String(event.data));
  t.deepEqual(received, [...range(0, 5000).map((n) => `${n} ${body}`), ...range(0, 20).map((n) => `live ${n}`)]);
  const [stream] = [...server.connections.list()].filter((session) => session.info.transport === 'sse');
  t.is(stream!.dropped, 0);
});

test('SSE: a token limited to some tags replays only through the subscriptions it may hold', async (t) => {
  const { server, publisher } = await scene(t, { authenticator: 'memory://', token: ADMIN });
  t.is((await publisher.request({ command: 'auth', data: ADMIN })).data, 'success');
  t.is((await publisher.request({ command: 'register', tags: ['news'], data: 'reader' })).data, 'success');
  const headers = { 'x-auth-token': 'reader' };
  const first = await SseClient.connect(t, server.url('http'), '?tags=news', headers);
  publisher.send({ command: 'publish', tags: ['news'], data: 'seen' });
  const { id } = await first.next();
  first.close();
  for (const [tags, n] of [[['news'], 1], [['secret'], 2], [['news', 'x'], 3]] as const) publisher.send({ command: 'publish', tags, data: n });
  await publisher.sync();
  await t.throwsAsync(SseClient.connect(t, server.url('http'), '?tags=secret', { ...headers, 'last-event-id': id! }), { message: 'HTTP 403' });
  const back = await SseClient.connect(t, server.url('http'), '?tags=news', { ...headers, 'last-event-id': id! });
  t.deepEqual(data(await events(back, 2)), [1, 3]);
  publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
  t.is((await back.next()).data, 'live');
});
