/**
 * SSE output over real sockets: events framed once per message and written
 * with the flush, straight to the socket as HTTP chunks once the stream owns
 * it, through the response otherwise (an HTTP/1.0 client, a stream asked
 * for behind another request on the same connection).
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import { chunk } from '../plugins/listeners/sse.ts';
import { eventually, startTestServer } from './helpers/server.ts';
import { Wakeup, WAIT_MS } from './helpers/wakeup.ts';
import { SseClient } from './helpers/web.ts';

async function httpServer(t: ExecutionContext) {
  const { server } = await startTestServer(t, { listeners: ['http://127.0.0.1:0'] });
  return { server, url: server.url('http') };
}

/** A raw connection to `url`'s port that sends `request` and keeps everything that comes back, as text. */
class RawHttp {
  text = '';
  private readonly wakeup = new Wakeup();

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      this.wakeup.wake();
    });
    socket.on('error', () => {});
  }

  static async open(t: ExecutionContext, url: string, request: string): Promise<RawHttp> {
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    t.teardown(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(request);
    return new RawHttp(socket);
  }

  async waitFor(condition: (text: string) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!condition(this.text)) {
      if (Date.now() >= deadline) throw new Error(`no ${what} within ${WAIT_MS} ms; got ${JSON.stringify(this.text.slice(0, 500))}`);
      await this.wakeup.wait(deadline);
    }
  }
}

/** The body of a chunked HTTP message, decoded (as much of it as has come). */
function dechunk(body: string): string {
  let decoded = '';
  for (let at = 0; ; ) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) return decoded;
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (body.length < lineEnd + 2 + size + 2) return decoded;
    decoded += body.slice(lineEnd + 2, lineEnd + 2 + size);
    if (body.slice(lineEnd + 2 + size, lineEnd + 4 + size) !== '\r\n') throw new Error(`a chunk not followed by CRLF at ${lineEnd + 2 + size}`);
    at = lineEnd + 4 + size;
  }
}

/** The data line of the event of a message to `s` whose data is the string `data` (more fields may follow). */
const event = (data: string) => `data: {"command":"publish","tags":["s"],"data":"${data}"`;
/** Whole events of such messages, each with its history id, one after the other, as a pattern. */
const events = (...data: string[]) => data.map((d) => `event: publish\nid: [^\n]+\n${event(d).replace(/[[\]{}]/g, '\\$&')}[^\n]*}\n\n`).join('');

test('every stream gets each event whole, small and large, in order: HTTP chunks its client decodes', async (t) => {
  const { server, url } = await httpServer(t);
  const streams = await Promise.all([0, 1, 2].map(() => SseClient.connect(t, url, '?tags=s')));
  const sizes = [10, 1000, 70 * 1024, 5];
  for (const size of sizes) server.broker.publish(undefined, ['s'], JSON.stringify('x'.repeat(size)));
  for (const stream of streams) {
    for (const size of sizes) t.like(await stream.next(), { event: 'publish', command: 'publish', tags: ['s'], data: 'x'.repeat(size) });
  }
});

test('a message flushed alone is chunked once for all its streams, and each stream still gets every message whole', async (t) => {
  const one = Buffer.from('event: publish\ndata: 1\n\n');
  const two = Buffer.from('event: publish\ndata: 22\n\n');
  t.is(chunk(one), chunk(one), 'the same event: the same chunk, not a copy each');
  t.is(chunk(two).toString(), `${two.length.toString(16)}\r\n${two}\r\n`);
  t.is(chunk(one).toString(), `${one.length.toString(16)}\r\n${one}\r\n`, 'framed anew once another came between');
  t.is(chunk(Buffer.from(one)).toString(), chunk(one).toString(), 'equal bytes in another buffer: framed the same');

  const { server, url } = await httpServer(t);
  const streams = await Promise.all([0, 1, 2].map(() => SseClient.connect(t, url, '?tags=s')));
  // One message a flush: each stream is written the shared chunk.
  for (const data of ['a', 'bb', 'ccc']) {
    server.broker.publish(undefined, ['s'], JSON.stringify(data));
    for (const stream of streams) t.like(await stream.next(), { event: 'publish', tags: ['s'], data });
  }
});

test('an HTTP/1.0 client, which takes no chunked encoding, gets its events through the response, as they are', async (t) => {
  const { server, url } = await httpServer(t);
  const raw = await RawHttp.open(t, url, 'GET /subscribe/events?tags=s HTTP/1.0\r\nHost: x\r\n\r\n');
  await raw.waitFor((text) => text.includes(': subscribed\n\n'), 'stream');
  t.notRegex(raw.text, /transfer-encoding/i);
  server.broker.publish(undefined, ['s'], '"one"');
  server.broker.publish(undefined, ['s'], '"two"');
  await raw.waitFor((text) => text.includes(event('two')), 'second event');
  const body = raw.text.slice(raw.text.indexOf('\r\n\r\n') + 4);
  t.regex(body, new RegExp(`^: subscribed\n\n${events('one', 'two')}$`));
});

test('a stream asked for behind another request on the same connection gets its events once it owns the connection', async (t) => {
  const { server, url } = await httpServer(t);
  const raw = await RawHttp.open(t, url, 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /subscribe/events?tags=s HTTP/1.1\r\nHost: x\r\n\r\n');
  await raw.waitFor((text) => text.includes(': subscribed'), 'stream');
  server.broker.publish(undefined, ['s'], '"one"');
  server.broker.publish(undefined, ['s'], '"two"');
  const responses = () => raw.text.split(/(?=HTTP\/1\.1 )/);
  await raw.waitFor(() => dechunk(responses()[1]?.split('\r\n\r\n')[1] ?? '').includes(event('two')), 'both events, chunked');
  const [ping, stream] = responses();
  t.regex(ping!, /^HTTP\/1\.1 200/);
  t.regex(stream!, /^HTTP\/1\.1 200[^]*transfer-encoding: chunked/i);
  t.regex(dechunk(stream!.slice(stream!.indexOf('\r\n\r\n') + 4)), new RegExp(`^: subscribed\n\n${events('one', 'two')}$`));
});

test('a stream queued behind another on the same connection writes nothing into the first one', async (t) => {
  const { server, url } = await httpServer(t);
  // HTTP/1.1 answers in order: the second stream waits, its events held by the response, until the first ends.
  const raw = await RawHttp.open(t, url, 'GET /subscribe/events?tags=a HTTP/1.1\r\nHost: x\r\n\r\nGET /subscribe/events?tags=s HTTP/1.1\r\nHost: x\r\n\r\n');
  await raw.waitFor((text) => text.includes(': subscribed'), 'first stream');
  await eventually(() => server.broker.subscriptionCount === 2, WAIT_MS, 'both streams subscribed');
  server.broker.publish(undefined, ['s'], '"one"');
  server.broker.publish(undefined, ['a'], '"two"');
  server.broker.publish(undefined, ['s'], '"three"');
  const body = () => dechunk(raw.text.slice(raw.text.indexOf('\r\n\r\n') + 4));
  await raw.waitFor(() => body().includes('"two"'), "the first stream's event");
  t.regex(body(), /^: subscribed\n\nevent: publish\nid: [^\n]+\ndata: \{"command":"publish","tags":\["a"\],"data":"two"[^\n]*}\n\n$/);
  t.is(raw.text.match(/HTTP\/1\.1/g)?.length, 1, 'only the first response has begun');
});
