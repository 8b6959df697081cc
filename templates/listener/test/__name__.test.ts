/**
 * The __name__ listener in a real mist server, over real sockets: a client
 * on the Unix socket and one on TCP share one broker.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { startServer } from 'mist';
import { connect as mistClient } from 'mist/client';

/** This package's folder: what a mist config's `plugins:` would name. */
const PLUGIN = fileURLToPath(new URL('..', import.meta.url));

/** A newline-delimited JSON client over `socket`, destroyed at teardown. */
async function lineClient(t: ExecutionContext, socket: Socket) {
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const lines = createInterface({ input: socket })[Symbol.asyncIterator]();
  return {
    send: (message: unknown) => socket.write(JSON.stringify(message) + '\n'),
    next: async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>,
  };
}

async function socketPath(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mist-__name__-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'mist.sock');
}

test('a client on the __name__ socket subscribes and receives what a tcp client publishes', async (t) => {
  const path = await socketPath(t);
  const server = await startServer({ listeners: ['tcp://127.0.0.1:0', `__name__://${path}`], logLevel: 'WARN', plugins: [PLUGIN] });
  t.teardown(() => server.close());
  t.is(server.url('__name__'), `__name__://${path}`);

  const local = await lineClient(t, connect(path));
  local.send({ command: 'ping' });
  t.deepEqual(await local.next(), { command: 'ping', tags: [], data: 'pong' });
  local.send({ command: 'subscribe', tags: ['news'] });
  t.deepEqual(await local.next(), { command: 'subscribe', tags: ['news'], data: 'success' });

  const remote = await mistClient(server.url('tcp'), { reconnect: false });
  t.teardown(() => remote.close());
  await remote.publish(['news', 'sports'], 'hello');
  const { id, ...message } = await local.next();
  t.deepEqual(message, { command: 'publish', tags: ['news', 'sports'], data: 'hello' });
  t.is(typeof id, 'string', 'with history on (the default) each delivery carries an id to resume from');
});

test('closing the server closes its __name__ connections and removes the socket file', async (t) => {
  const path = await socketPath(t);
  const server = await startServer({ listeners: [`__name__://${path}`], logLevel: 'WARN', plugins: [PLUGIN] });
  t.teardown(() => server.close());
  const socket = connect(path);
  await lineClient(t, socket);
  t.true(existsSync(path));
  await Promise.all([server.close(), once(socket, 'close')]);
  t.false(existsSync(path));
});
