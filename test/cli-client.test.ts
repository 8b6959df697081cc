/**
 * `mist ping|subscribe|publish` against a real server: what they print and
 * how they exit. They run in this process through main(), except one ping,
 * one publish from stdin and one subscribe stopped by SIGINT, which run
 * cli/bin.ts, the executable, in a child process.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type MistClient } from '../client/index.ts';
import { MistCli } from './helpers/mist-cli.ts';
import { startTestServer } from './helpers/server.ts';

const ADMIN = 'admin-secret';
const WITH_AUTH = { authenticator: 'memory://', token: ADMIN };
const BOTH = { listeners: ['tcp://127.0.0.1:0', 'ws://127.0.0.1:0'] };

/** `--host 127.0.0.1:PORT` for a server's TCP listener. */
function hostOf(url: string): string {
  return new URL(url).host;
}

async function subscriber(t: ExecutionContext, url: string, tags: string[], token?: string): Promise<AsyncIterator<{ data: unknown }>> {
  const client: MistClient = await connect(url, { token });
  t.teardown(() => client.close());
  await client.subscribe(tags);
  return client.messages();
}

test('mist ping prints pong and exits 0', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['ping', '--host', hostOf(server.url('tcp'))], { spawn: true });
  t.deepEqual(cli.status, { code: 0, signal: null });
  t.is(cli.stdout, 'pong\n');
  t.is(cli.stderr, '');
});

test('a refused connection exits 1 with "mist: cannot connect to … connection refused"', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  await server.close();
  const cli = await MistCli.run(t, ['ping', '--host', hostOf(url)]);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: cannot connect to ${url}: connection refused\n`);
  t.is(cli.stdout, '');
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
  const cli = await MistCli.run(t, ['publish', '--tags', 'a', '--data', '-', '--host', hostOf(server.url('tcp'))], {
    input: 'line one\nline two\n',
    spawn: true,
  });
  t.is(cli.status.code, 0, cli.stderr);
  t.is((await messages.next()).value?.data, 'line one\nline two');
});

test('mist publish refused by the server exits 1 with its error', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['publish', '--tags', `a,${'x'.repeat(300)}`, '--data', 'x', '--host', hostOf(server.url('tcp'))]);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, 'mist: publish refused: tag too long: 300 bytes (limit 256)\n');
});

test("mist subscribe prints each message's data on its own line and exits 0 on SIGINT", async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a,b', '--host', hostOf(url)], { spawn: true });
  await cli.waitFor('stderr', /^mist: subscribed to a,b on /m);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a'], 'not all the tags');
  await publisher.publish(['a', 'b', 'c'], 'first');
  await publisher.publish(['b', 'a'], { n: 12345678901234567890n.toString() });
  await publisher.publish(['a', 'b'], 'last');
  await cli.waitFor('stdout', /last\n/);
  t.is(cli.stdout, 'first\n{"n":"12345678901234567890"}\nlast\n');
  cli.stop('SIGINT');
  t.deepEqual(await cli.exit(), { code: 0, signal: null });
});

test('mist subscribe --json prints whole messages and exits 0 on SIGTERM', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--json', '--host', hostOf(url)]);
  await cli.waitFor('stderr', /^mist: subscribed to a on /m);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a', 'z'], 'hi');
  await cli.waitFor('stdout', /\n/);
  t.regex(cli.stdout, /^\{"command":"publish","tags":\["a","z"\],"data":"hi","id":"[^"]+"\}\n$/, 'the message as received, its id included');
  cli.stop('SIGTERM');
  t.deepEqual(await cli.exit(), { code: 0, signal: null });
});

test('mist publish --url ws://… publishes over WebSocket', async (t) => {
  const { server } = await startTestServer(t, BOTH);
  const messages = await subscriber(t, server.url('tcp'), ['a']);
  const cli = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'over ws', '--url', server.url('ws')]);
  t.is(cli.status.code, 0, cli.stderr);
  t.is((await messages.next()).value?.data, 'over ws');
});

test('a bad token exits 1 with "mist: authentication failed: invalid token"', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const cli = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'x', '--token', 'wrong', '--host', hostOf(server.url('tcp'))]);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, 'mist: authentication failed: invalid token\n');
  t.is(cli.stdout, '');
});

test('the token may come from MIST_TOKEN instead of --token', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const messages = await subscriber(t, server.url('tcp'), ['a'], ADMIN);
  const cli = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'from env', '--host', hostOf(server.url('tcp'))], {
    env: { MIST_TOKEN: ADMIN },
  });
  t.is(cli.status.code, 0, cli.stderr);
  t.is((await messages.next()).value?.data, 'from env');
});

test('an unknown flag exits 2 with a usage message', async (t) => {
  const cli = await MistCli.run(t, ['publish', '--frobnicate']);
  t.is(cli.status.code, 2);
  t.regex(cli.stderr, /^mist: unknown flag --frobnicate\nUsage:\n  mist publish .*\nRun "mist publish --help" for more\.\n$/);
  t.is(cli.stdout, '');
});

test('a refused connection fails publish and subscribe with exit 1 too', async (t) => {
  const { server } = await startTestServer(t);
  const url = server.url('tcp');
  await server.close();
  for (const args of [['publish', '--tags', 'a', '--data', 'x'], ['subscribe', '--tags', 'a']]) {
    const cli = await MistCli.run(t, [...args, '--url', url]);
    t.is(cli.status.code, 1);
    t.is(cli.stderr, `mist: cannot connect to ${url}: connection refused\n`);
  }
});

test('mist ping --url tcp://… works too', async (t) => {
  const { server } = await startTestServer(t);
  const cli = await MistCli.run(t, ['ping', '--url', server.url('tcp')]);
  t.is(cli.status.code, 0, cli.stderr);
  t.is(cli.stdout, 'pong\n');
});

test('mist subscribe survives a server restart: it reconnects and subscribes again', async (t) => {
  const first = await startTestServer(t);
  const url = first.server.url('tcp');
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--url', url]);
  await cli.waitFor('stderr', /subscribed to a/);
  await first.server.close();
  await cli.waitFor('stderr', /lost; reconnecting/);
  await startTestServer(t, { listeners: [url] });
  await cli.waitFor('stderr', /reconnected/);
  const publisher = await connect(url);
  t.teardown(() => publisher.close());
  await publisher.publish(['a'], 'after the restart');
  await cli.waitFor('stdout', /after the restart\n/);
  cli.stop('SIGINT');
  t.is((await cli.exit()).code, 0);
});

test('mist subscribe --url ws://… receives over WebSocket and stops with exit 0', async (t) => {
  const { server } = await startTestServer(t, BOTH);
  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--url', server.url('ws')]);
  await cli.waitFor('stderr', /subscribed to a/);
  const publisher = await connect(server.url('tcp'));
  t.teardown(() => publisher.close());
  await publisher.publish(['a'], 'over ws');
  await cli.waitFor('stdout', /over ws\n/);
  cli.stop('SIGINT');
  t.is((await cli.exit()).code, 0);
});

test('a token refused by a WebSocket server exits 1; the right one works', async (t) => {
  const { server } = await startTestServer(t, { ...WITH_AUTH, ...BOTH });
  const url = server.url('ws');
  const cli = await MistCli.run(t, ['ping', '--url', url, '--token', 'wrong']);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: ${url}/subscribe/websocket refused the token (HTTP 401)\n`);
  const ok = await MistCli.run(t, ['ping', '--url', url, '--token', ADMIN]);
  t.is(ok.status.code, 0, ok.stderr);
});

test('with an authenticator, --token lets publish and subscribe through; without one they exit 1', async (t) => {
  const { server } = await startTestServer(t, WITH_AUTH);
  const url = server.url('tcp');
  const refused = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'x', '--url', url]);
  t.is(refused.status.code, 1);
  t.is(refused.stderr, 'mist: publish refused: not authenticated: send auth first\n');
  const notSubscribed = await MistCli.run(t, ['subscribe', '--tags', 'a', '--url', url]);
  t.is(notSubscribed.status.code, 1);
  t.is(notSubscribed.stderr, 'mist: subscribe refused: not authenticated: send auth first\n');
  t.is((await MistCli.run(t, ['ping', '--url', url, '--token', 'wrong'])).stderr, 'mist: authentication failed: invalid token\n');

  const cli = MistCli.start(t, ['subscribe', '--tags', 'a', '--url', url, '--token', ADMIN]);
  await cli.waitFor('stderr', /subscribed to a/);
  const published = await MistCli.run(t, ['publish', '--tags', 'a', '--data', 'let in', '--url', url, '--token', ADMIN]);
  t.is(published.status.code, 0, published.stderr);
  await cli.waitFor('stdout', /let in\n/);
  cli.stop('SIGINT');
  t.is((await cli.exit()).code, 0);
});

const usage = test.macro({
  async exec(t, args: string[], message: string) {
    const cli = await MistCli.run(t, args);
    t.is(cli.status.code, 2);
    t.true(cli.stderr.startsWith(`mist: ${message}\nUsage:\n`), cli.stderr);
    t.is(cli.stdout, '');
  },
  title: (what = '') => `${what} exits 2 with a usage message`,
});

test('publish without --tags', usage, ['publish', '--data', 'x'], '--tags needs at least one tag (e.g. --tags a,b)');
test('publish with only commas for tags', usage, ['publish', '--tags', ',', '--data', 'x'], '--tags needs at least one tag (e.g. --tags a,b)');
test('publish without --data', usage, ['publish', '--tags', 'a'], 'publish needs --data TEXT (or --data - to read it from stdin)');
test('subscribe without --tags', usage, ['subscribe'], '--tags needs at least one tag (e.g. --tags a,b)');
test('--data on ping', usage, ['ping', '--data', 'x'], 'unknown flag --data');
test('a mistyped flag', usage, ['ping', '--hots', '127.0.0.1'], 'unknown flag --hots (did you mean --host?)');
test('a mistyped flag given with =', usage, ['publish', '--tag=a', '--data', 'x'], 'unknown flag --tag (did you mean --tags?)');
test('a --host port out of range', usage, ['ping', '--host', '127.0.0.1:99999'], '--host: "127.0.0.1:99999": port 99999 is out of range (0 to 65535)');
test('a --host port that is no number', usage, ['ping', '--host', 'localhost:http'], '--host: "localhost:http": port "http" is not a number');
test('a --host with a path', usage, ['ping', '--host', 'localhost/x'], '--host: "localhost/x": expected HOST or HOST:PORT');
test('a --url port out of range', usage, ['ping', '--url', 'ws://127.0.0.1:70000'], '--url: "ws://127.0.0.1:70000": port 70000 is out of range (0 to 65535)');
test('a --timeout that is no number', usage, ['ping', '--timeout', '5s'], '--timeout: expected a whole number of milliseconds from 1 to 2147483647, got "5s"');
test('a --timeout of 0', usage, ['ping', '--timeout', '0'], '--timeout: expected a whole number of milliseconds from 1 to 2147483647, got "0"');
test('--insecure for a tcp:// server', usage, ['ping', '--insecure'], '--insecure is for tls:// and wss:// servers, not tcp://127.0.0.1:1445');
test('--ca for a ws:// server', usage, ['ping', '--url', 'ws://127.0.0.1:1', '--ca', 'ca.pem'], '--ca is for tls:// and wss:// servers, not ws://127.0.0.1:1');
test('a --ca file that does not exist', usage, ['ping', '--url', 'tls://127.0.0.1:1', '--ca', '/nonexistent/ca.pem'], '--ca: cannot read /nonexistent/ca.pem: ENOENT');
test('a positional argument', usage, ['ping', 'extra'], "Unexpected argument 'extra'. This command does not take positional arguments");
test('--host and --url together', usage, ['ping', '--host', 'a:1', '--url', 'tcp://a:1'], 'give --host or --url, not both');
test('an unsupported --url scheme', usage, ['ping', '--url', 'http://127.0.0.1:1'], '--url: unsupported scheme "http" (known: tcp, tls, ws, wss)');
test('a --url that is no URL', usage, ['ping', '--url', 'nope'], '--url: "nope": expected scheme://host:port');

test('mist publish --help prints the client usage and exits 0', async (t) => {
  const cli = await MistCli.run(t, ['publish', '--help']);
  t.is(cli.status.code, 0);
  t.regex(cli.stdout, /mist publish +--tags a,b --data TEXT\|-/);
});
