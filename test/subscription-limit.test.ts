/**
 * `limits.maxSubscriptionsPerConnection` over real sockets: the refusal a
 * client sees, that it changes nothing and the connection carries on, that
 * other connections are unaffected, the metric and the log line; and the
 * same cap on an SSE stream's subscriptions.
 */
import test from 'ava';
import { eventually, LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { fetchText, SseClient } from './helpers/web.ts';

test('past 10,000 subscriptions by default a subscribe is refused, nothing changes, and the connection and others carry on', async (t) => {
  const { server, logs } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'] });
  const client = await LineClient.connect(t, server.url('tcp'));
  const held = Array.from({ length: 10_000 }, (_, i) => ['held', `t${i}`]);
  const requests = [
    ...held.map((tags) => ({ command: 'subscribe', tags })),
    { command: 'subscribe', tags: ['one', 'too', 'many'] },
    // Already held, spelled differently: not a new subscription.
    { command: 'subscribe', tags: ['t7', 'held', 't7'] },
    { command: 'subscribe', tags: ['two', 'too', 'many'] },
  ];
  client.write(requests.map((request) => JSON.stringify(request) + '\n').join(''));
  let inOrder = 0;
  for (const tags of held) {
    const reply = await client.next();
    if (reply.data === 'success' && JSON.stringify(reply.tags) === JSON.stringify(tags)) inOrder++;
  }
  t.is(inOrder, held.length, 'the first 10,000 answered, in order');
  const refusal = { command: 'subscribe', error: 'too many subscriptions: 10001 (limit 10000)' };
  t.deepEqual(await client.next(), refusal);
  t.deepEqual(await client.next(), { command: 'subscribe', tags: ['t7', 'held', 't7'], data: 'success' });
  t.deepEqual(await client.next(), refusal);
  t.is(server.broker.subscriptionCount, 10_000);

  // The connection carries on: it receives, and may subscribe again once it lets one go.
  const other = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await other.request({ command: 'subscribe', tags: ['one'] }), { command: 'subscribe', tags: ['one'], data: 'success' });
  other.send({ command: 'publish', tags: ['held', 't9999', 'one'], data: 'hello' });
  t.deepEqual(withoutId(await client.next()), { command: 'publish', tags: ['held', 't9999', 'one'], data: 'hello' });
  t.deepEqual(await client.request({ command: 'unsubscribe', tags: ['held', 't0'] }), { command: 'unsubscribe', tags: ['held', 't0'], data: 'success' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['one'] }), { command: 'subscribe', tags: ['one'], data: 'success' });
  other.send({ command: 'publish', tags: ['one'], data: 'again' });
  t.deepEqual(withoutId(await client.next()), { command: 'publish', tags: ['one'], data: 'again' });

  const metrics = (await fetchText(`${server.url('http')}/metrics`)).body.split('\n');
  t.true(metrics.includes('mist_limit_refusals_total{limit="maxSubscriptionsPerConnection"} 2'), 'the refusals are counted');
  const warnings = logs.filter((line) => line.msg === 'maxSubscriptionsPerConnection reached: subscribes are refused');
  t.is(warnings.length, 1, 'one warning per connection, however often it tries');
  t.like(warnings[0], { level: 'warn', limit: 10_000, transport: 'tcp' });
});

test('the cap is configurable, and an SSE stream whose subscriptions pass it is refused with 413 and holds nothing', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'], limits: { maxSubscriptionsPerConnection: 2 } });
  const client = await LineClient.connect(t, server.url('tcp'));
  for (const tags of [['a'], ['b']]) await client.request({ command: 'subscribe', tags });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['c'] }), { command: 'subscribe', error: 'too many subscriptions: 3 (limit 2)' });

  const error = (await t.throwsAsync(SseClient.connect(t, server.url('http'), '?tags=a&tags=b&tags=c'))) as Error & { status?: number; body: string };
  t.is(error.status, 413);
  t.deepEqual(JSON.parse(error.body), { error: 'too many subscriptions: 3 (limit 2)' });
  await eventually(() => server.connections.count === 1, 5000, 'the refused stream closed');
  t.deepEqual(await client.request({ command: 'unsubscribe', tags: ['a'] }), { command: 'unsubscribe', tags: ['a'], data: 'success' });
  t.is(server.broker.subscriptionCount, 1, 'the refused stream holds nothing');
  const stream = await SseClient.connect(t, server.url('http'), '?tags=a&tags=b');
  client.send({ command: 'publish', tags: ['a'], data: 'to the stream' });
  t.is((await stream.next()).data, 'to the stream');
});
