/**
 * Delivery across transports: one broker behind tcp, ws,
 * SSE and HTTP publish, so a message published on any reaches matching
 * subscribers on all, once each, never the publisher.
 */
import test, { type ExecutionContext } from 'ava';
import { LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { postPublish, SseClient, websocketUrl, WsClient } from './helpers/web.ts';

async function scene(t: ExecutionContext) {
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0', 'ws://127.0.0.1:0'] });
  const tcp = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await tcp.request({ command: 'subscribe', tags: ['x'] }), { command: 'subscribe', tags: ['x'], data: 'success' });
  const ws = await WsClient.connect(t, websocketUrl(server.url('ws')));
  t.deepEqual(await ws.request({ command: 'subscribe', tags: ['x'] }), { command: 'subscribe', tags: ['x'], data: 'success' });
  // A WebSocket on the http port is the same endpoint.
  const wsOnHttp = await WsClient.connect(t, websocketUrl(server.url('http')));
  t.deepEqual(await wsOnHttp.request({ command: 'subscribe', tags: ['x'] }), { command: 'subscribe', tags: ['x'], data: 'success' });
  const sse = await SseClient.connect(t, server.url('http'), '?tags=x');
  return { server, tcp, ws, wsOnHttp, sse };
}

const message = (data: unknown) => ({ command: 'publish', tags: ['x', 'y'], data });

test('tcp publisher → ws, ws-on-http and SSE subscribers', async (t) => {
  const { tcp, ws, wsOnHttp, sse } = await scene(t);
  tcp.send(message('from tcp'));
  t.deepEqual(withoutId(await ws.next()), message('from tcp'));
  t.deepEqual(withoutId(await wsOnHttp.next()), message('from tcp'));
  t.deepEqual(withoutId(await sse.next()), { event: 'publish', ...message('from tcp') });
  await tcp.sync();
  t.is(tcp.pending, 0, 'the publisher does not receive its own message');
});

test('ws publisher → tcp, ws-on-http and SSE subscribers', async (t) => {
  const { tcp, ws, wsOnHttp, sse } = await scene(t);
  ws.send(message({ n: 2 }));
  t.deepEqual(withoutId(await tcp.next()), message({ n: 2 }));
  t.deepEqual(withoutId(await wsOnHttp.next()), message({ n: 2 }));
  t.deepEqual(withoutId(await sse.next()), { event: 'publish', ...message({ n: 2 }) });
  await ws.sync();
  t.is(ws.pending, 0, 'the publisher does not receive its own message');
});

test('HTTP POST publish → tcp, ws and SSE subscribers', async (t) => {
  const { server, tcp, ws, wsOnHttp, sse } = await scene(t);
  t.is((await postPublish(server.url('http'), { tags: ['x', 'y'], data: [3] })).status, 204);
  t.deepEqual(withoutId(await tcp.next()), message([3]));
  t.deepEqual(withoutId(await ws.next()), message([3]));
  t.deepEqual(withoutId(await wsOnHttp.next()), message([3]));
  t.deepEqual(withoutId(await sse.next()), { event: 'publish', ...message([3]) });
});

test('messages from one publisher keep their order on every transport', async (t) => {
  const { tcp, ws, sse } = await scene(t);
  for (let i = 0; i < 50; i++) tcp.send(message(i));
  for (let i = 0; i < 50; i++) {
    t.is((await ws.next()).data, i);
    t.is((await sse.next()).data, i);
  }
});
