/**
 * How the client commands reach a server: TLS with `--ca` or `--insecure`,
 * `--timeout` against a server that never answers, and the environment
 * variables that stand for the flags. All run in this process through
 * main().
 */
import { createServer, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { MistCli } from './helpers/mist-cli.ts';
import { startTestServer } from './helpers/server.ts';
import { certificateFiles } from './helpers/web.ts';

/** A TCP server that accepts connections and never writes a byte; closed, with its connections, at teardown. */
async function silentServer(t: ExecutionContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

test('tls:// with --ca FILE trusts the server certificate in FILE', async (t) => {
  const files = await certificateFiles(t);
  const { server } = await startTestServer(t, { listeners: [`tls://127.0.0.1:0?cert=${files.cert}&key=${files.key}`] });
  const cli = await MistCli.run(t, ['ping', '--url', server.url('tls'), '--ca', files.cert]);
  t.is(cli.status.code, 0, cli.stderr);
  t.is(cli.stdout, 'pong\n');
});

test("$MIST_CA stands for --ca, and is let be for a tcp:// server", async (t) => {
  const files = await certificateFiles(t);
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', `tls://127.0.0.1:0?cert=${files.cert}&key=${files.key}`] });
  for (const url of [server.url('tls'), server.url('tcp')]) {
    const cli = await MistCli.run(t, ['ping', '--url', url], { env: { MIST_CA: files.cert } });
    t.is(cli.status.code, 0, cli.stderr);
  }
});

test("a server's self-signed certificate is refused without --ca or --insecure, saying which to give", async (t) => {
  const { server } = await startTestServer(t, { listeners: ['tls://127.0.0.1:0'] });
  const url = server.url('tls');
  const cli = await MistCli.run(t, ['ping', '--url', url]);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: cannot connect to ${url}: self-signed certificate; give --ca FILE to trust its certificate, or --insecure not to check it\n`);
});

test('--ca with another certificate is refused as not trusted', async (t) => {
  const [served, other] = [await certificateFiles(t), await certificateFiles(t)];
  const { server } = await startTestServer(t, { listeners: [`tls://127.0.0.1:0?cert=${served.cert}&key=${served.key}`] });
  const cli = await MistCli.run(t, ['ping', '--url', server.url('tls'), '--ca', other.cert]);
  t.is(cli.status.code, 1);
  t.regex(cli.stderr, /^mist: cannot connect to tls:.*; give --ca FILE to trust its certificate, or --insecure not to check it\n$/);
});

test('--insecure reaches the self-signed tls:// and wss:// listeners: ping, publish, subscribe and tokens', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['tls://127.0.0.1:0', 'wss://127.0.0.1:0'], authenticator: 'memory://', token: 'admin' });
  for (const url of [server.url('tls'), server.url('wss')]) {
    const flags = ['--url', url, '--insecure', '--token', 'admin'];
    t.is((await MistCli.run(t, ['ping', ...flags])).stdout, 'pong\n', url);
    const subscriber = MistCli.start(t, ['subscribe', '--tags', 'a', ...flags]);
    await subscriber.waitFor('stderr', /subscribed to a/);
    const published = await MistCli.run(t, ['publish', '--tags', 'a', '--data', `over ${url}`, ...flags]);
    t.is(published.status.code, 0, published.stderr);
    await subscriber.waitFor('stdout', /\n/);
    t.is(subscriber.stdout, `over ${url}\n`);
    subscriber.stop('SIGINT');
    t.is((await subscriber.exit()).code, 0);
    const tags = await MistCli.run(t, ['tokens', 'register', `t-${new URL(url).protocol.slice(0, -1)}`, '--tags', 'a', ...flags]);
    t.is(tags.status.code, 0, tags.stderr);
  }
});

// The timeout covers the connection too: 1000 ms, so that on a busy machine it is the reply that is waited for in vain.
test('--timeout: a server that accepts but never answers fails with exit 1 and says so', async (t) => {
  const port = await silentServer(t);
  for (const command of [['ping'], ['publish', '--tags', 'a', '--data', 'x'], ['tokens', 'list', '--token', 'admin']]) {
    const cli = await MistCli.run(t, [...command, '--host', `127.0.0.1:${port}`, '--timeout', '1000']);
    t.is(cli.status.code, 1, command[0]);
    t.is(cli.stderr, `mist: no reply from tcp://127.0.0.1:${port} within 1000 ms (--timeout)\n`, command[0]);
  }
});

test('--timeout: a tls:// server that never answers the handshake fails with exit 1', async (t) => {
  const port = await silentServer(t);
  const cli = await MistCli.run(t, ['ping', '--url', `tls://127.0.0.1:${port}`, '--insecure'], { env: { MIST_TIMEOUT: '100' } });
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: cannot connect to tls://127.0.0.1:${port}: no connection within 100 ms\n`);
});

test('--timeout: subscribe to a server that never answers fails with exit 1', async (t) => {
  const port = await silentServer(t);
  const cli = await MistCli.run(t, ['subscribe', '--tags', 'a', '--host', `127.0.0.1:${port}`, '--timeout', '1000']);
  t.is(cli.status.code, 1);
  t.is(cli.stderr, `mist: no reply from tcp://127.0.0.1:${port} within 1000 ms (--timeout)\n`);
});

test('$MIST_URL names the server when no --host or --url is given; --host overrides it', async (t) => {
  const [one, two] = [await startTestServer(t), await startTestServer(t)];
  const env = { MIST_URL: one.server.url('tcp') };
  const fromEnv = await MistCli.run(t, ['ping'], { env });
  t.is(fromEnv.stdout, 'pong\n', fromEnv.stderr);
  const host = new URL(two.server.url('tcp')).host;
  await one.server.close();
  const overridden = await MistCli.run(t, ['ping', '--host', host], { env });
  t.is(overridden.stdout, 'pong\n', overridden.stderr);
  const bad = await MistCli.run(t, ['ping'], { env: { MIST_URL: 'tcp://127.0.0.1:99999' } });
  t.is(bad.status.code, 2);
  t.regex(bad.stderr, /^mist: \$MIST_URL: "tcp:\/\/127\.0\.0\.1:99999": port 99999 is out of range \(0 to 65535\)\n/);
});

test('a bad value from the environment is named by its variable', async (t) => {
  const cli = await MistCli.run(t, ['ping', '--url', 'tls://127.0.0.1:1'], { env: { MIST_TIMEOUT: '5s', MIST_CA: '/nonexistent/ca.pem' } });
  t.is(cli.status.code, 2);
  t.regex(cli.stderr, /^mist: \$MIST_TIMEOUT: expected a whole number of milliseconds from 1 to 2147483647, got "5s"\n/);
});
