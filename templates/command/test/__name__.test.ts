/** The `__name__` command in a real mist server, over a real TCP connection. */
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { MistError, startServer } from 'mist';

/** This package's folder: what a mist config's `plugins:` would name. */
const PLUGIN = fileURLToPath(new URL('..', import.meta.url));

/** A mist server with this plugin, and a newline-delimited JSON client of it; both closed at teardown. */
async function serverAndClient(t: ExecutionContext, options?: Record<string, unknown>) {
  const server = await startServer({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'WARN', plugins: [{ module: PLUGIN, options }] });
  t.teardown(() => server.close());
  const { hostname, port } = new URL(server.url('tcp'));
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const lines = createInterface({ input: socket })[Symbol.asyncIterator]();
  return async (message: unknown) => {
    socket.write(JSON.stringify(message) + '\n');
    return JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  };
}

test('__name__ replies with the tags and data it was sent', async (t) => {
  const request = await serverAndClient(t);
  t.deepEqual(await request({ command: '__name__', tags: ['a'], data: 'hello' }), { command: '__name__', tags: ['a'], data: 'hello' });
});

test('__name__ puts the configured prefix before the data', async (t) => {
  const request = await serverAndClient(t, { prefix: '> ' });
  t.deepEqual(await request({ command: '__name__', data: 'hello' }), { command: '__name__', tags: [], data: '> hello' });
});

test('__name__ without data gets an error reply, and the connection keeps working', async (t) => {
  const request = await serverAndClient(t);
  t.deepEqual(await request({ command: '__name__' }), { command: '__name__', error: '__name__ needs data' });
  t.deepEqual(await request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
});

test('a mistyped option stops the server from starting, naming the plugin and the key', async (t) => {
  const error = await t.throwsAsync(startServer({ listeners: ['tcp://127.0.0.1:0'], logLevel: 'WARN', plugins: [{ module: PLUGIN, options: { prefx: '>' } }] }), {
    instanceOf: MistError,
  });
  t.regex(error?.message ?? '', /plugin "__name__": options\.prefx is not a known option/);
});
