/**
 * The TLS variants: tls://, wss:// and https:// with a certificate
 * from the URI query, from the config, or self-signed at start-up with its
 * SHA-256 fingerprint logged. Certificates are made at test time.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../host/config-schema.ts';
import { buildConfig } from '../host/config.ts';
import { MistError } from '../core/errors.ts';
import { startTestServer } from './helpers/server.ts';
import { certificateFiles, fetchText, postPublish, SseClient, websocketUrl, WsClient } from './helpers/web.ts';

/** A TLS client speaking newline-delimited JSON, trusting exactly `ca` (or anything when absent). */
async function tlsClient(t: ExecutionContext, url: string, ca?: string) {
  const { hostname, port } = new URL(url);
  const socket: TLSSocket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost', rejectUnauthorized: ca !== undefined });
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let buffer = '';
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buffer += text;
    let at: number;
    while ((at = buffer.indexOf('\n')) >= 0) {
      lines.push(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
    }
    waiters.splice(0).forEach((wake) => wake());
  });
  return {
    socket,
    async request(message: unknown): Promise<unknown> {
      socket.write(JSON.stringify(message) + '\n');
      while (lines.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return JSON.parse(lines.shift()!);
    },
  };
}

test('tls:// with ?cert=&key= serves the protocol over TLS with that certificate', async (t) => {
  const files = await certificateFiles(t);
  const { server } = await startTestServer(t, { listeners: [`tls://127.0.0.1:0?cert=${files.cert}&key=${files.key}`] });
  const url = server.url('tls');
  t.regex(url, /^tls:\/\/127\.0\.0\.1:\d+$/);
  const client = await tlsClient(t, url, files.pem);
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.deepEqual(await client.request({ command: 'subscribe', tags: ['a'] }), { command: 'subscribe', tags: ['a'], data: 'success' });
  t.is(server.connections.byTransport().get('tls'), 1);
});

test('tls:// without a certificate makes a self-signed one and logs its SHA-256 fingerprint', async (t) => {
  const { server, logs } = await startTestServer(t, { listeners: ['tls://127.0.0.1:0'] });
  const client = await tlsClient(t, server.url('tls'));
  const served = client.socket.getPeerX509Certificate()!.fingerprint256;
  const logged = logs.find((line) => line.fingerprint256 !== undefined);
  t.truthy(logged, 'the fingerprint is logged');
  t.is(logged!.fingerprint256, served);
  t.regex(String(logged!.msg), /self-signed/);
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
});

test('wss:// serves the WebSocket endpoint over TLS, certificate from the config file', async (t) => {
  const files = await certificateFiles(t);
  const { server, logs } = await startTestServer(t, { listeners: ['wss://127.0.0.1:0'], tls: { cert: files.cert, key: files.key } });
  t.false(logs.some((line) => line.fingerprint256 !== undefined), 'no self-signed certificate was made');
  const url = server.url('wss');
  const client = await WsClient.connect(t, websocketUrl(url), { ca: files.pem, rejectUnauthorized: true });
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
  t.is(server.connections.byTransport().get('wss'), 1);
});

test('https:// serves every HTTP route over TLS', async (t) => {
  const files = await certificateFiles(t);
  const { server } = await startTestServer(t, { listeners: [`https://127.0.0.1:0?cert=${files.cert}&key=${files.key}`] });
  const url = server.url('https');
  t.regex(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.is((await fetchText(`${url}/ping`)).body, 'pong');
  const stream = await SseClient.connect(t, url, '?tags=a');
  const ws = await WsClient.connect(t, websocketUrl(url));
  await ws.request({ command: 'subscribe', tags: ['a'] });
  t.is((await postPublish(url, { tags: ['a'], data: 'secure' })).status, 204);
  t.is((await stream.next()).data, 'secure');
  t.is((await ws.next()).data, 'secure');
  t.is(server.connections.byTransport().get('wss'), 1);
});

test('only one of ?cert= and ?key= is refused at start-up', async (t) => {
  const files = await certificateFiles(t);
  const error = await t.throwsAsync(startTestServer(t, { listeners: [`https://127.0.0.1:0?cert=${files.cert}`] }));
  t.regex(error.message, /cannot listen on https:.*give both \?cert= and \?key=, or neither/);
});

test('a certificate file that does not exist is refused at start-up naming it', async (t) => {
  const error = await t.throwsAsync(startTestServer(t, { listeners: ['tls://127.0.0.1:0?cert=/nonexistent/c.pem&key=/nonexistent/k.pem'] }));
  t.regex(error.message, /cannot listen on tls:.*\/nonexistent\/c\.pem/);
});

test('a plain-TCP client on a tls:// port does not disturb the server', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['tls://127.0.0.1:0'] });
  const { hostname, port } = new URL(server.url('tls'));
  const { connect } = await import('node:net');
  const plain = connect(Number(port), hostname);
  t.teardown(() => plain.destroy());
  plain.on('error', () => {});
  plain.write('{"command":"ping"}\n');
  await new Promise((resolve) => plain.once('close', resolve));
  const client = await tlsClient(t, server.url('tls'));
  t.deepEqual(await client.request({ command: 'ping' }), { command: 'ping', tags: [], data: 'pong' });
});

test('the config key tls takes cert and key paths, resolved from the config folder', (t) => {
  const config = buildConfig({ tls: { cert: 'certs/c.pem', key: '/abs/k.pem' } }, '/etc/mist');
  t.deepEqual(config.tls, { cert: '/etc/mist/certs/c.pem', key: '/abs/k.pem' });
  t.is(buildConfig({}).tls, undefined);
});

test('a malformed tls config key is refused naming the key', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['cert.pem', /config: tls must be an object/],
    [{ cert: 'c.pem' }, /config: tls\.key must be the path of a PEM file/],
    [{ cert: '', key: 'k.pem' }, /config: tls\.cert must be the path of a PEM file/],
    [{ cert: 'c.pem', key: 'k.pem', ca: 'x' }, /config: tls\.ca is not a known key/],
  ];
  for (const [tls, message] of cases) {
    const error = t.throws(() => buildConfig({ tls } as ConfigFile), { instanceOf: MistError });
    t.regex(error!.message, message);
  }
});
