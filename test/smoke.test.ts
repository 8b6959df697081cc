import test from 'ava';
import { LineClient, startTestServer } from './helpers/server.ts';

test('ping over tcp replies pong', async (t) => {
  const { server, logs } = await startTestServer(t);
  const client = await LineClient.connect(t, server.url('tcp'));
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.true(logs.some((l) => l.msg === `listening on ${server.url('tcp')}`));
});
