/** The `__name__` command in a real mist server, over a real TCP connection (mist's client library). */
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { MistError, startServer } from 'mist';
import { connect, MistReplyError } from 'mist/client';

/** This package's folder: what a mist config's `plugins:` would name. */
const PLUGIN = fileURLToPath(new URL('..', import.meta.url));

/** A mist server with this plugin, and a client of it; both closed at teardown. */
async function serverAndClient(t: ExecutionContext, options?: Record<string, unknown>) {
  const server = await startServer({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'WARN', plugins: [{ module: PLUGIN, options }] });
  t.teardown(() => server.close());
  const client = await connect(server.url('tcp'), { reconnect: false });
  t.teardown(() => client.close());
  return client;
}

test('__name__ replies with the tags and data it was sent', async (t) => {
  const client = await serverAndClient(t);
  t.deepEqual(await client.request({ command: '__name__', tags: ['a'], data: 'hello' }), { command: '__name__', tags: ['a'], data: 'hello' });
});

test('__name__ puts the configured prefix before the data', async (t) => {
  const client = await serverAndClient(t, { prefix: '> ' });
  t.deepEqual(await client.request({ command: '__name__', data: 'hello' }), { command: '__name__', tags: [], data: '> hello' });
});

test('__name__ without data gets an error reply, and the connection keeps working', async (t) => {
  const client = await serverAndClient(t);
  const refused = await t.throwsAsync(client.request({ command: '__name__' }), { instanceOf: MistReplyError });
  t.deepEqual(refused?.reply, { command: '__name__', error: '__name__ needs data' });
  await client.ping();
});

test('a mistyped option stops the server from starting, naming the plugin and the key', async (t) => {
  const starting = startServer({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'WARN', plugins: [{ module: PLUGIN, options: { prefx: '>' } }] });
  const error = await t.throwsAsync(starting, { instanceOf: MistError });
  t.regex(error?.message ?? '', /plugin "__name__": options\.prefx is not a known option/);
});
