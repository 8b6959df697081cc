/**
 * `mist subscribe` resumes on every reconnect: what was published while it
 * was away is printed, and a gap is said on stderr.
 */
import test from 'ava';
import { connect } from '../client/index.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { LineClient, startTestServer } from './helpers/server.ts';

test('mist subscribe prints what was published while its connection was down, once, in order', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--url', url]);
  await cli.waitFor('stderr', /subscribed to a/);
  const publisher = await LineClient.connect(t, url);
  publisher.send({ command: 'publish', tags: ['a'], data: 'before' });
  await cli.waitFor('stdout', /before\n/);
  for (const session of server.connections.list()) if (session.subscriptions.size > 0) session.abort();
  for (const data of ['one', 'two', 'three']) publisher.send({ command: 'publish', tags: ['a'], data });
  await cli.waitFor('stderr', /reconnected/);
  publisher.send({ command: 'publish', tags: ['a'], data: 'live' });
  await cli.waitFor('stdout', /live\n/);
  t.is(cli.stdout, 'before\none\ntwo\nthree\nlive\n');
  t.notRegex(cli.stderr, /missing/);
  cli.stop('SIGINT');
  t.is((await cli.exit()).code, 0);
});

test('mist subscribe says on stderr that messages may be missing when the server cannot resume (a restart)', async (t) => {
  const first = await startTestServer(t);
  const url = first.server.url('tcp');
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--url', url]);
  await cli.waitFor('stderr', /subscribed to a/);
  const publisher = await connect(url);
  await publisher.publish(['a'], 'before');
  await publisher.close();
  await cli.waitFor('stdout', /before\n/);
  await first.server.close();
  await startTestServer(t, { listeners: [url] });
  await cli.waitFor('stderr', /mist: messages published while disconnected may be missing \(the server could not resume\)\n/);
  cli.stop('SIGINT');
  t.is((await cli.exit()).code, 0);
});
