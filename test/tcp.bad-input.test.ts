/**
 * Bad input over real TCP sockets: every kind gets an error reply
 * (or, when over `maxMessageBytes`, an error reply and a closed connection),
 * never crashes the server, never disturbs another connection, and leaks
 * nothing.
 */
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { seededRandom } from './helpers/prng.ts';
import { eventually, LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>['server'];

const BYSTANDER_TAG = 'by';

/**
 * A subscriber and a publisher connected before the bad input arrives.
 * `assertUntouched` proves the subscriber still gets a publish, and that
 * nothing else reached it meanwhile (such as a bad publish that should have
 * been refused: bad publishes in these tests carry the bystander's tag).
 */
class Bystander {
  private sent = 0;

  private constructor(
    private readonly t: ExecutionContext,
    readonly watcher: LineClient,
    readonly publisher: LineClient,
  ) {}

  static async start(t: ExecutionContext, server: Server): Promise<Bystander> {
    const watcher = await LineClient.connect(t, server.url('tcp'));
    t.deepEqual(await watcher.request({ command: 'subscribe', tags: [BYSTANDER_TAG] }), {
      command: 'subscribe',
      tags: [BYSTANDER_TAG],
      data: 'success',
    });
    const publisher = await LineClient.connect(t, server.url('tcp'));
    await publisher.sync();
    return new Bystander(t, watcher, publisher);
  }

  async assertUntouched(): Promise<void> {
    const data = `still here ${this.sent++}`;
    this.publisher.send({ command: 'publish', tags: [BYSTANDER_TAG], data });
    this.t.deepEqual(withoutId(await this.watcher.next()), { command: 'publish', tags: [BYSTANDER_TAG], data }, 'the bystander gets the publish');
    await assertNothingMore(this.t, this.watcher);
    await assertNothingMore(this.t, this.publisher);
  }

  close(): void {
    this.watcher.close();
    this.publisher.close();
  }
}

/** Proves `client` has nothing more queued: the ping reply must be the very next line. */
async function assertNothingMore(t: ExecutionContext, client: LineClient): Promise<void> {
  t.is(client.pending, 0, 'no unread line before the ping');
  await client.sync();
  t.is(client.pending, 0, 'no unread line after the ping');
}

/** Reads the next line and checks it is an error reply for `command`: exactly `command` and a non-empty `error`. */
async function expectError(t: ExecutionContext, client: LineClient, command: string): Promise<string> {
  const line = await client.nextLine();
  const reply = JSON.parse(line) as Record<string, unknown>;
  t.deepEqual(Object.keys(reply), ['command', 'error'], line);
  t.is(reply.command, command, line);
  t.true(typeof reply.error === 'string' && reply.error.length > 0, line);
  return reply.error as string;
}

/** Both counters back to zero: no connection and no subscription left behind. */
async function assertNothingLeaks(server: Server): Promise<void> {
  await eventually(() => server.connections.count === 0, WAIT_MS, 'no connection left');
  await eventually(() => server.broker.subscriptionCount === 0, WAIT_MS, 'no subscription left');
}

/** A server (with `config`), a bystander pair watching it, and a client to misbehave with. */
async function scene(
  t: ExecutionContext,
  config: ConfigFile = {},
): Promise<{ server: Server; bystander: Bystander; client: LineClient }> {
  const { server } = await startTestServer(t, config);
  const bystander = await Bystander.start(t, server);
  const client = await LineClient.connect(t, server.url('tcp'));
  return { server, bystander, client };
}

/** A `publish` line to the bystander of exactly `bytes` bytes (without its newline). */
function publishLineOf(bytes: number): string {
  const empty = JSON.stringify({ command: 'publish', tags: [BYSTANDER_TAG], data: '' });
  if (bytes < empty.length) throw new Error(`a publish line cannot be shorter than ${empty.length}`);
  return JSON.stringify({ command: 'publish', tags: [BYSTANDER_TAG], data: 'x'.repeat(bytes - empty.length) });
}

function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------
// One malformed line: an error reply naming the command, nothing changes,
// the connection and the others carry on.

interface BadLine {
  what: string;
  line: string;
  /** The command the error reply names (`error` when the input has no usable command). */
  command: string;
}

const BAD_LINES: BadLine[] = [
  { what: 'malformed JSON (unterminated object)', line: '{"command":"ping"', command: 'error' },
  { what: 'malformed JSON (trailing comma)', line: '{"command":"subscribe","tags":["a"],}', command: 'error' },
  { what: 'malformed JSON (not JSON at all)', line: 'hello there', command: 'error' },
  { what: 'malformed JSON (single quotes)', line: "{'command':'ping'}", command: 'error' },
  { what: 'a bare number', line: '42', command: 'error' },
  { what: 'a bare string', line: '"ping"', command: 'error' },
  { what: 'an array', line: '[{"command":"ping"}]', command: 'error' },
  { what: 'null', line: 'null', command: 'error' },
  { what: 'a boolean', line: 'true', command: 'error' },
  { what: 'an object without command', line: '{"tags":["by"],"data":"x"}', command: 'error' },
  { what: 'command a number', line: '{"command":42}', command: 'error' },
  { what: 'command null', line: '{"command":null,"tags":["by"]}', command: 'error' },
  { what: 'command an array', line: '{"command":["publish"],"tags":["by"],"data":"x"}', command: 'error' },
  { what: 'command an object', line: '{"command":{"name":"ping"}}', command: 'error' },
  { what: 'subscribe with tags a string', line: '{"command":"subscribe","tags":"by"}', command: 'subscribe' },
  { what: 'subscribe with tags an object', line: '{"command":"subscribe","tags":{"0":"a"}}', command: 'subscribe' },
  { what: 'subscribe with tags a number', line: '{"command":"subscribe","tags":1}', command: 'subscribe' },
  { what: 'publish with tags a string', line: '{"command":"publish","tags":"by","data":"x"}', command: 'publish' },
  { what: 'subscribe with a number tag', line: '{"command":"subscribe","tags":["a",1]}', command: 'subscribe' },
  { what: 'subscribe with a null tag', line: '{"command":"subscribe","tags":[null]}', command: 'subscribe' },
  { what: 'subscribe with a nested-array tag', line: '{"command":"subscribe","tags":[["a"]]}', command: 'subscribe' },
  { what: 'publish with an object tag', line: '{"command":"publish","tags":["by",{}],"data":"x"}', command: 'publish' },
  { what: 'unsubscribe with a number tag', line: '{"command":"unsubscribe","tags":[7]}', command: 'unsubscribe' },
  { what: 'subscribe with an empty-string tag', line: '{"command":"subscribe","tags":[""]}', command: 'subscribe' },
  { what: 'ping with numeric data', line: '{"command":"ping","data":1}', command: 'ping' },
  { what: 'ping with object data', line: '{"command":"ping","data":{"x":"pong"}}', command: 'ping' },
  { what: 'subscribe with object data', line: '{"command":"subscribe","tags":["a"],"data":{"x":1}}', command: 'subscribe' },
  { what: 'subscribe with array data', line: '{"command":"subscribe","tags":["a"],"data":["a"]}', command: 'subscribe' },
  { what: 'list with boolean data', line: '{"command":"list","data":false}', command: 'list' },
  { what: 'subscribe with empty tags', line: '{"command":"subscribe","tags":[]}', command: 'subscribe' },
  { what: 'publish with empty tags', line: '{"command":"publish","tags":[],"data":"x"}', command: 'publish' },
  { what: 'unsubscribe with empty tags', line: '{"command":"unsubscribe","tags":[]}', command: 'unsubscribe' },
  { what: 'subscribe without tags', line: '{"command":"subscribe"}', command: 'subscribe' },
  { what: 'subscribe with null tags', line: '{"command":"subscribe","tags":null}', command: 'subscribe' },
  { what: 'publish without tags', line: '{"command":"publish","data":"x"}', command: 'publish' },
  { what: 'unsubscribe without tags', line: '{"command":"unsubscribe"}', command: 'unsubscribe' },
];

for (const { what, line, command } of BAD_LINES) {
  test(`${what} gets a "${command}" error reply; that connection and the others carry on`, async (t) => {
    const { server, bystander, client } = await scene(t);
    // A subscription held before the bad line must survive it.
    await client.request({ command: 'subscribe', tags: ['mine'] });
    const errorsBefore = server.dispatcher.errors;

    client.write(line + '\n');
    await expectError(t, client, command);
    t.is(server.dispatcher.errors, errorsBefore + 1);

    // Nothing changed: the same subscriptions, on this connection and overall.
    await assertNothingMore(t, client);
    t.deepEqual(await client.request({ command: 'list' }), { command: 'list', data: '[["mine"]]' });
    t.is(server.broker.subscriptionCount, 2);
    await bystander.assertUntouched();
    // And the connection still works for real commands.
    client.send({ command: 'publish', tags: [BYSTANDER_TAG], data: 'from the bad one' });
    t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: [BYSTANDER_TAG], data: 'from the bad one' });
    await assertNothingMore(t, client);
  });
}

test('a line with invalid UTF-8 inside a JSON string is refused as invalid UTF-8 and publishes nothing', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.write(Buffer.concat([Buffer.from(`{"command":"publish","tags":["${BYSTANDER_TAG}"],"data":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
  t.is(await expectError(t, client, 'error'), 'invalid UTF-8');
  t.is(server.broker.stats.published, 0);
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

test('a run of bad lines on one connection gets one error reply each, in order', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.write(BAD_LINES.map((bad) => bad.line + '\n').join(''));
  for (const { command } of BAD_LINES) await expectError(t, client, command);
  await assertNothingMore(t, client);
  t.is(server.dispatcher.errors, BAD_LINES.length);
  t.is(server.broker.subscriptionCount, 1);
  await bystander.assertUntouched();
});

// ---------------------------------------------------------------------------
// Tag limits.

test('default limits: 64 tags and a 256-byte tag are accepted, 65 tags or a 257-byte tag refused', async (t) => {
  const { server, bystander, client } = await scene(t);
  const tags = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

  t.like(await client.request({ command: 'subscribe', tags: tags(64) }), { command: 'subscribe', data: 'success' });
  client.send({ command: 'subscribe', tags: tags(65) });
  t.regex(await expectError(t, client, 'subscribe'), /tag/i);
  client.send({ command: 'publish', tags: [BYSTANDER_TAG, ...tags(64)], data: 'too many' });
  await expectError(t, client, 'publish');
  client.send({ command: 'publish', tags: [BYSTANDER_TAG, ...tags(62), 'y'.repeat(256)], data: 'at the limits' });
  t.like(withoutId(await bystander.watcher.next()), { command: 'publish', data: 'at the limits' });

  const long = 'x'.repeat(256);
  t.like(await client.request({ command: 'subscribe', tags: [long] }), { command: 'subscribe', data: 'success' });
  client.send({ command: 'subscribe', tags: ['x'.repeat(257)] });
  t.regex(await expectError(t, client, 'subscribe'), /tag/i);
  client.send({ command: 'publish', tags: [BYSTANDER_TAG, 'x'.repeat(257)], data: 'too long' });
  await expectError(t, client, 'publish');

  // The limit is in UTF-8 bytes, not characters: é is 2 bytes, 🐟 is 4.
  t.like(await client.request({ command: 'subscribe', tags: ['é'.repeat(128)] }), { data: 'success' });
  t.like(await client.request({ command: 'subscribe', tags: ['🐟'.repeat(64)] }), { data: 'success' });
  client.send({ command: 'subscribe', tags: ['é'.repeat(129)] });
  await expectError(t, client, 'subscribe');
  client.send({ command: 'subscribe', tags: ['🐟'.repeat(64) + 'a'] });
  await expectError(t, client, 'subscribe');

  t.is(server.broker.subscriptionCount, 5);
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

test('configured limits maxTags 3 and maxTagBytes 8 are enforced on subscribe and publish', async (t) => {
  const { server, bystander, client } = await scene(t, { limits: { maxTags: 3, maxTagBytes: 8 } });

  t.like(await client.request({ command: 'subscribe', tags: ['a', 'b', 'c'] }), { data: 'success' });
  client.send({ command: 'subscribe', tags: ['a', 'b', 'c', 'd'] });
  await expectError(t, client, 'subscribe');
  t.like(await client.request({ command: 'subscribe', tags: ['12345678'] }), { data: 'success' });
  t.like(await client.request({ command: 'subscribe', tags: ['éééé'] }), { data: 'success' });
  client.send({ command: 'subscribe', tags: ['123456789'] });
  await expectError(t, client, 'subscribe');
  client.send({ command: 'subscribe', tags: ['ééééa'] });
  await expectError(t, client, 'subscribe');

  client.send({ command: 'publish', tags: [BYSTANDER_TAG, 'a', 'b', 'c'], data: 'refused' });
  await expectError(t, client, 'publish');
  client.send({ command: 'publish', tags: [BYSTANDER_TAG, '123456789'], data: 'refused' });
  await expectError(t, client, 'publish');
  client.send({ command: 'publish', tags: [BYSTANDER_TAG, '12345678', 'éééé'], data: 'at the limits' });
  t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: [BYSTANDER_TAG, '12345678', 'éééé'], data: 'at the limits' });

  t.deepEqual(await client.request({ command: 'list' }), {
    command: 'list',
    data: JSON.stringify([['12345678'], ['a', 'b', 'c'], ['éééé']]),
  });
  t.is(server.broker.subscriptionCount, 4);
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

// ---------------------------------------------------------------------------
// Over-long lines: an error reply, then the connection is closed.

test('a 2000-byte line over maxMessageBytes 1024 gets an error reply, then the connection is closed', async (t) => {
  const { server, bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  client.write(publishLineOf(2000) + '\n');
  t.regex(await expectError(t, client, 'error'), /1024/);
  await client.waitClosed();
  t.is(client.pending, 0, 'nothing after the error reply');
  await eventually(() => server.connections.count === 2, WAIT_MS, 'only the bystanders left');
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
});

test('an over-long line is refused before its newline arrives', async (t) => {
  const { server, bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  await client.request({ command: 'subscribe', tags: ['mine'] });
  client.write(publishLineOf(2000));
  t.regex(await expectError(t, client, 'error'), /1024/);
  await client.waitClosed();
  await eventually(() => server.broker.subscriptionCount === 1, WAIT_MS, 'its subscription gone');
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
});

test('an over-long line arriving in many small writes is refused once it passes the limit', async (t) => {
  const { bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  const line = publishLineOf(1500);
  for (let at = 0; at < line.length && !client.closed; at += 100) {
    client.write(line.slice(at, at + 100));
    await nextTick();
  }
  await expectError(t, client, 'error');
  await client.waitClosed();
  await bystander.assertUntouched();
});

test('a line of exactly maxMessageBytes is accepted, one byte more is refused', async (t) => {
  const { bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  const exact = publishLineOf(1024);
  t.is(Buffer.byteLength(exact), 1024);
  client.write(exact + '\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), JSON.parse(exact));
  await assertNothingMore(t, client);

  client.write(publishLineOf(1025) + '\n');
  await expectError(t, client, 'error');
  await client.waitClosed();
  await bystander.assertUntouched();
});

test('a line of exactly maxMessageBytes ending in CRLF is accepted: the \\r is not part of the line', async (t) => {
  const { bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  const exact = publishLineOf(1024);
  // In one write, and split right between the \r and the \n.
  client.write(exact + '\r\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), JSON.parse(exact));
  client.write(exact + '\r');
  await nextTick();
  client.write('\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), JSON.parse(exact));
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

test('the default 1 MiB limit: a 1 MiB line is accepted and delivered, one just over it is refused and closed', async (t) => {
  const { server } = await startTestServer(t);
  t.is(server.config.limits.maxMessageBytes, 1024 * 1024);
  const bystander = await Bystander.start(t, server);
  const client = await LineClient.connect(t, server.url('tcp'));

  const almost = publishLineOf(1024 * 1024 - 100);
  client.write(almost + '\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), JSON.parse(almost));
  const exact = publishLineOf(1024 * 1024);
  client.write(exact + '\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), JSON.parse(exact));
  await assertNothingMore(t, client);

  client.write(publishLineOf(1024 * 1024 + 1) + '\n');
  t.regex(await expectError(t, client, 'error'), /1048576/);
  await client.waitClosed();
  await bystander.assertUntouched();
});

// ---------------------------------------------------------------------------
// Framing.

test('CRLF line endings work, and blank lines are ignored', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.write('{"command":"subscribe","tags":["a"]}\r\n\r\n\n{"command":"ping"}\r\n');
  t.is(await client.nextLine(), '{"command":"subscribe","tags":["a"],"data":"success"}');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  client.write('{"command":"publish","tags":["by"],"data":"crlf"}\r\n');
  t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: ['by'], data: 'crlf' });
  client.write('{"command":"list"}\r\n');
  t.is(await client.nextLine(), '{"command":"list","data":"[[\\"a\\"]]"}');
  // Whitespace around and inside the JSON, bar raw newlines, is fine too.
  client.write('  { "command" : "ping" ,\t"tags" : [ ] }  \r\n');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  await assertNothingMore(t, client);
  t.is(server.dispatcher.errors, 0);
  await bystander.assertUntouched();
});

test('several commands in one TCP write are each handled, in order', async (t) => {
  const { bystander, client } = await scene(t);
  client.write(
    [
      '{"command":"subscribe","tags":["a"]}',
      '{"command":"subscribe","tags":["b","c"]}',
      '{"command":"publish","tags":["by"],"data":1}',
      '{"command":"nope"}',
      '{"command":"list"}',
      '{"command":"unsubscribe","tags":["a"]}',
      '{"command":"ping"}',
      '',
    ].join('\n'),
  );
  t.is(await client.nextLine(), '{"command":"subscribe","tags":["a"],"data":"success"}');
  t.is(await client.nextLine(), '{"command":"subscribe","tags":["b","c"],"data":"success"}');
  t.is(await client.nextLine(), '{"command":"nope","error":"Unknown Command"}');
  t.is(await client.nextLine(), '{"command":"list","data":"[[\\"a\\"],[\\"b\\",\\"c\\"]]"}');
  t.is(await client.nextLine(), '{"command":"unsubscribe","tags":["a"],"data":"success"}');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: ['by'], data: 1 });
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

test('one command split over many writes, even inside a UTF-8 character, is handled once whole', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.socket.setNoDelay(true);
  const bytes = Buffer.from('{"command":"publish","tags":["by"],"data":"split 🐟 é 日本"}\n');
  for (let i = 0; i < bytes.length; i++) {
    client.write(bytes.subarray(i, i + 1));
    await nextTick();
  }
  t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: ['by'], data: 'split 🐟 é 日本' });
  // And a line whose \r and \n arrive in separate writes.
  client.write('{"command":"ping"}\r');
  await nextTick();
  client.write('\n');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  await assertNothingMore(t, client);
  t.is(server.dispatcher.errors, 0);
  await bystander.assertUntouched();
});

// ---------------------------------------------------------------------------
// Binary garbage.

/** How many error replies `garbage` must get: one per non-empty `\n`-terminated line (a trailing `\r` stripped). */
function linesIn(garbage: Buffer): number {
  let count = 0;
  let start = 0;
  for (let end = garbage.indexOf(0x0a); end !== -1; end = garbage.indexOf(0x0a, start)) {
    let length = end - start;
    if (length > 0 && garbage[end - 1] === 0x0d) length--;
    if (length > 0) count++;
    start = end + 1;
  }
  return count;
}

/** Random bytes, with plenty of NULs, newlines and bytes that are never valid UTF-8. */
function garbage(random: () => number, size: number, newlines: boolean): Buffer {
  const special = [0x00, 0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x0d, 0x7b, 0x22, ...(newlines ? [0x0a, 0x0a] : [])];
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    const byte = random() < 0.3 ? special[Math.floor(random() * special.length)]! : Math.floor(random() * 256);
    bytes[i] = !newlines && byte === 0x0a ? 0x00 : byte;
  }
  return bytes;
}

test('binary garbage with newlines gets one error reply per line and never crashes the server', async (t) => {
  const { server, bystander, client } = await scene(t);
  const random = seededRandom(0xbad);
  const data = Buffer.concat([garbage(random, 20_000, true), Buffer.from('\n')]);
  const expected = linesIn(data);
  t.true(expected > 100);
  // In random-sized writes, so lines straddle chunks.
  for (let at = 0; at < data.length; ) {
    const size = 1 + Math.floor(random() * 3000);
    client.write(data.subarray(at, at + size));
    at += size;
  }
  for (let i = 0; i < expected; i++) await expectError(t, client, 'error');
  await assertNothingMore(t, client);
  t.is(server.dispatcher.errors, expected);
  await bystander.assertUntouched();
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['after'] }), { command: 'subscribe', tags: ['after'], data: 'success' });
});

test('binary garbage without newlines is one bad line: one error reply once the newline comes', async (t) => {
  const { bystander, client } = await scene(t);
  const random = seededRandom(0xf00d);
  for (let round = 0; round < 5; round++) {
    client.write(garbage(random, 5000, false));
    await nextTick();
    client.write('\n');
    await expectError(t, client, 'error');
  }
  await assertNothingMore(t, client);
  await bystander.assertUntouched();
});

test('binary garbage without newlines past maxMessageBytes gets an error reply and the connection closed', async (t) => {
  const { server, bystander, client } = await scene(t, { limits: { maxMessageBytes: 1024 } });
  client.write(garbage(seededRandom(7), 5000, false));
  await expectError(t, client, 'error');
  await client.waitClosed();
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
});

test('many connections sending garbage at once: the server keeps serving everybody else', async (t) => {
  const { server } = await startTestServer(t, { limits: { maxMessageBytes: 4096 } });
  const bystander = await Bystander.start(t, server);
  const random = seededRandom(0x5eed);
  const clients = await Promise.all(Array.from({ length: 20 }, () => LineClient.connect(t, server.url('tcp'))));
  for (const [i, client] of clients.entries()) {
    // Half send lines (error replies), half one endless line (closed), some vanish at once.
    client.write(garbage(random, 10_000, i % 2 === 0));
    if (i % 5 === 0) client.socket.destroy();
  }
  await bystander.assertUntouched();
  for (const client of clients) client.close();
  await eventually(() => server.connections.count === 2, WAIT_MS, 'only the bystanders left');
  t.is(server.broker.subscriptionCount, 1);
  await bystander.assertUntouched();
});

// ---------------------------------------------------------------------------
// Abrupt disconnects and half-open peers leak nothing.

/** Runs `scenario` with a client of a fresh server, then checks the bystander and that nothing leaks. */
async function abruptly(t: ExecutionContext, scenario: (client: LineClient, server: Server) => Promise<void>): Promise<void> {
  const { server, bystander, client } = await scene(t);
  await scenario(client, server);
  await eventually(() => server.connections.count === 2, WAIT_MS, 'only the bystanders left');
  t.is(server.broker.subscriptionCount, 1, 'only the bystander’s subscription left');
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
}

test('a client destroyed mid-line leaks nothing', async (t) => {
  await abruptly(t, async (client) => {
    await client.request({ command: 'subscribe', tags: ['a', 'b'] });
    client.write('{"command":"subscribe","tags":["c"');
    await nextTick();
    client.socket.destroy();
  });
});

test('a client destroyed right after subscribing, before the reply, leaks nothing', async (t) => {
  await abruptly(t, async (client) => {
    client.send({ command: 'subscribe', tags: ['a'] });
    client.send({ command: 'subscribe', tags: ['by'] });
    client.socket.destroy();
  });
});

test('a client destroyed with many unread replies and deliveries leaks nothing', async (t) => {
  await abruptly(t, async (client, server) => {
    await client.request({ command: 'subscribe', tags: ['flood'] });
    client.socket.pause();
    let pings = '';
    for (let i = 0; i < 500; i++) pings += '{"command":"ping"}\n';
    client.write(pings);
    const publisher = await LineClient.connect(t, server.url('tcp'));
    let flood = '';
    for (let i = 0; i < 2000; i++) flood += JSON.stringify({ command: 'publish', tags: ['flood'], data: 'z'.repeat(500) }) + '\n';
    publisher.write(flood);
    await publisher.sync();
    client.socket.destroy();
    publisher.close();
  });
});

test('a client that resets its connection (RST) leaks nothing', async (t) => {
  await abruptly(t, async (client) => {
    await client.request({ command: 'subscribe', tags: ['a'] });
    await client.request({ command: 'subscribe', tags: ['by', 'x'] });
    client.write('{"command":"ping"}\n{"command":"publish","tags":["a"],"da');
    client.socket.resetAndDestroy();
    await client.waitClosed();
  });
});

test('many clients vanishing abruptly at once leak nothing', async (t) => {
  await abruptly(t, async (first, server) => {
    const clients = [first, ...(await Promise.all(Array.from({ length: 30 }, () => LineClient.connect(t, server.url('tcp')))))];
    await Promise.all(clients.map((c, i) => c.request({ command: 'subscribe', tags: [`s${i % 7}`, 'shared'] })));
    t.is(server.broker.subscriptionCount, 8);
    clients.forEach((client, i) => {
      client.write('{"command":"publish","tags":["shared","s1"],"data":"bye"}\n{"command":"ping"');
      if (i % 3 === 0) client.socket.resetAndDestroy();
      else if (i % 3 === 1) client.socket.destroy();
      else client.socket.end();
    });
  });
});

test('a half-open peer (client ends its side): the server handles what was sent, replies, and closes', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.write(
    '{"command":"subscribe","tags":["a"]}\n{"command":"publish","tags":["by"],"data":"last words"}\n{"command":"list"}\n{"command":"ping"}\n',
  );
  client.socket.end();
  t.is(await client.nextLine(), '{"command":"subscribe","tags":["a"],"data":"success"}');
  t.is(await client.nextLine(), '{"command":"list","data":"[[\\"a\\"]]"}');
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  await client.waitClosed();
  t.is(client.pending, 0);
  t.deepEqual(withoutId(await bystander.watcher.next()), { command: 'publish', tags: ['by'], data: 'last words' });
  await eventually(() => server.connections.count === 2, WAIT_MS, 'only the bystanders left');
  t.is(server.broker.subscriptionCount, 1);
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
});

test('a half-open peer that ends mid-line: the partial line is discarded and the server closes', async (t) => {
  const { server, bystander, client } = await scene(t);
  client.write('{"command":"ping"}\n{"command":"publish","tags":["by"],"data":"never"');
  client.socket.end();
  t.is(await client.nextLine(), '{"command":"ping","tags":[],"data":"pong"}');
  await client.waitClosed();
  await bystander.assertUntouched();
  bystander.close();
  await assertNothingLeaks(server);
});
