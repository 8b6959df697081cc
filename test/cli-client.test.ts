/**
 * `mist ping|subscribe|publish` run as child processes against a real
 * server: what they print and how they exit.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type MistClient } from '../core/index.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { startTestServer } from './helpers/server.ts';
import { startWsBridge } from './helpers/ws-bridge.ts';

/** `--host 127.0.0.1:PORT` for a server's TCP listener. */
function hostOf(url: string): string {
  return new URL(url).host;
}

async function subscriber(t: ExecutionContext, url: string, tags: string[]): Promise<AsyncIterator<{ data: unknown }>> {
  const client: MistClient = await connect(url);
  t.teardown(() => client.close());
  await client.subscribe(tags);
  return client.messages();
}

/** Starts `mist subscribe …` and waits until it holds its subscription. */
async function startSubscriber(t: ExecutionContext, args: string[]): Promise<MistCli> {
  const cli = MistCli.start(t, ['subscribe', ...args]);
  await cli.waitFor('stderr', /^mist: subscribed to /m);
  return cli;
}

test('mist ping prints pong and exits 0', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['ping', '--host', hostOf(server.url('tcp'))]);
  t.deepEqual(cli.status, { code: 0, signal: null });
  t.is(cli.stdout, 'pong\n');
  t.is(cli.stderr, '');
});

test('mist ping --url tcp://… works too', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['ping', '--url', server.url('tcp')]);
  t.is(cli.status.code, 0, cli.stderr);
  t.is(cli.stdout, 'pong\n');
});

test('a refused connection exits 1 with "mist: cannot connect to … connection refused"', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  await server.close();
  for (const args of [['ping'], ['publish', '--tags', 'a', '--data', 'x'], ['subscribe', '--tags', 'a']]) {
    const cli = await MistCli.run(t, [...args, '--host', hostOf(url)]);
    t.is(cli.status.code, 1, args[0]);
    t.is(cli.stderr, `mist: cannot connect to ${url}: connection refused\n`);
    t.is(cli.stdout, '');
  }
});

test('mist publish exits 0 once accepted, and subscribers get the data', async (t) => {
  const { server } = await startTestServer(t);
  const messages = await subscriber(t, server.url('tcp'), ['a']);
  const cli = await MistCli.run(t, ['publish', '--tags', 'a,b', '--data', 'hello world', '--host', hostOf(server.url('tcp'))]);
  t.deepEqual(cli.status, { code: 0, signal: null }, cli.stderr);
  t.is(cli.stdout, '');
  t.is(cli.stderr, '');
  t.is((await messages.next()).value?.data, 'hello world');
});

test('mist publish --data - reads the data from stdin, less its final newline', async (t) => {
  const { server } = await startTestServer(t);
  const messages = await subscriber(t, server.url('tcp'), ['a']);
  const cli = await MistCli.run(t, ['publish', '--tags', 'a', '--data', '-', '--host', hostOf(server.url('tcp'))], 'line one\nline two\n');
  t.is(cli.status.code, 0, cli.stderr);
  t.is((await messages.next()).value?.data, 'line one\nline two');
});

test('mist publish refused by the server exits 1 with its error', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['publish', '--tags', `a,${'x'.repeat(300)}`, '--data', 'x', '--host', hostOf(server.url('tcp'))]);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, 'mist: publish refused: tag too long: 300 bytes (limit 256)\n');
});

test('mist subscribe prints each message\'s data on its own line and exits 0 on SIGINT', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const cli = await startSubscriber(t, ['--tags', 'a,b', '--host', hostOf(url)]);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a'], 'not all the tags');
  await publisher.publish(['a', 'b', 'c'], 'first');
  await publisher.publish(['b', 'a'], { n: 12 });
  await publisher.publish(['a', 'b'], 'two\\nlines');
  await cli.waitFor('stdout', /lines\n/);
  t.is(cli.stdout, 'first\n{"n":12}\ntwo\\nlines\n');
  cli.child.kill('SIGINT');
  t.deepEqual(await cli.exit(), { code: 0, signal: null });
});

test('mist subscribe --json prints whole messages and exits 0 on SIGTERM', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const cli = await startSubscriber(t, ['--tags', 'a', '--json', '--host', hostOf(url)]);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a', 'z'], 'hi');
  await cli.waitFor('stdout', /\n/);
  t.is(cli.stdout, '{"command":"publish","tags":["a","z"],"data":"hi"}\n');
  cli.child.kill('SIGTERM');
  t.deepEqual(await cli.exit(), { code: 0, signal: null });
});

test('mist subscribe survives a server restart: it reconnects and subscribes again', async (t) => {
  const first = await startTestServer(t);
  const url = first.server.url('tcp');
  const cli = await startSubscriber(t, ['--tags', 'a', '--host', hostOf(url)]);
  await first.server.close();
  await cli.waitFor('stderr', /reconnecting/);
  await startTestServer(t, { listeners: [url] });
  await cli.waitFor('stderr', /reconnected/);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a'], 'after the restart');
  await cli.waitFor('stdout', /after the restart\n/);
  cli.child.kill('SIGINT');
  t.is((await cli.exit()).code, 0);
});

test('--url ws://… publishes and subscribes over WebSocket', async (t) => {
  const { server } = await startTestServer(t);
  const bridge = await startWsBridge(t, () => server.url('tcp'));
  const cli = await startSubscriber(t, ['--tags', 'a', '--url', bridge.url]);
  const publish = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'over ws', '--url', bridge.url]);
  t.is(publish.status.code, 0, publish.stderr);
  await cli.waitFor('stdout', /over ws\n/);
  cli.child.kill('SIGINT');
  t.is((await cli.exit()).code, 0);
});

test('a token refused by a WebSocket server exits 1', async (t) => {
  const { server } = await startTestServer(t);
  const bridge = await startWsBridge(t, () => server.url('tcp'), { token: 'secret' });
  const cli = await MistCli.run(t, ['ping', '--url', bridge.url, '--token', 'wrong']);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: ${bridge.url}/subscribe/websocket refused the token (HTTP 401)\n`);
  const ok = await MistCli.run(t, ['ping', '--url', bridge.url, '--token', 'secret']);
  t.is(ok.status.code, 0, ok.stderr);
});

const usage = test.macro({
  async exec(t, args: string[], message: string) {
    const cli = await MistCli.run(t, args);
    t.is(cli.status.code, 2);
    t.true(cli.stderr.startsWith(`mist: ${message}\n`), cli.stderr);
    t.regex(cli.stderr, /Usage/);
    t.is(cli.stdout, '');
  },
  title: (what = '') => `${what} exits 2 with a usage message`,
});

test('publish without --tags', usage, ['publish', '--data', 'x'], '--tags needs at least one tag (e.g. --tags a,b)');
test('publish with only commas for tags', usage, ['publish', '--tags', ',', '--data', 'x'], '--tags needs at least one tag (e.g. --tags a,b)');
test('publish without --data', usage, ['publish', '--tags', 'a'], 'publish needs --data TEXT (or --data - to read it from stdin)');
test('subscribe without --tags', usage, ['subscribe'], '--tags needs at least one tag (e.g. --tags a,b)');
test('an unknown flag', usage, ['ping', '--frobnicate'], "Unknown option '--frobnicate'");
test('--data on ping', usage, ['ping', '--data', 'x'], "Unknown option '--data'");
test('--host and --url together', usage, ['ping', '--host', 'a:1', '--url', 'tcp://a:1'], 'give --host or --url, not both');
test('an unsupported --url scheme', usage, ['ping', '--url', 'http://127.0.0.1:1'], '--url: unsupported scheme "http" (known: tcp, tls, ws, wss)');

test('mist publish --help prints the client usage and exits 0', async (t) => {
  const cli = await MistCli.run(t, ['publish', '--help']);
  t.is(cli.status.code, 0);
  t.regex(cli.stdout, /mist publish +--tags a,b --data TEXT\|-/);
});
