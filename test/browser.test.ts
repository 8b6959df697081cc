/**
 * The client's browser build, served by the http listener at
 * `/mist-client.js`: what is served, then the real thing in headless
 * Chromium. A page loaded from mist's http listener imports the client,
 * subscribes over WebSocket and receives what a Node client publishes (and
 * the other way round); with an authenticator it authenticates with `auth`,
 * since a page cannot set headers on a WebSocket.
 *
 * Chromium is Debian's (/usr/bin/chromium), driven by playwright-core and
 * started by each test with a fresh profile. Without it the browser tests
 * are skipped, saying so, unless MIST_REQUIRE_SERVICES is set (CI, whose
 * .ci/run installs it): then they fail.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { chromium, type Page } from 'playwright-core';
import { connect } from '../client/index.ts';
import { assertBuilt } from './helpers/build.ts';
import { tempFolder } from './helpers/files.ts';
import { startTestServer } from './helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && !process.env.MIST_REQUIRE_SERVICES) {
  console.warn(`# skipping the browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium; set MIST_REQUIRE_SERVICES to fail instead)`);
}
const inBrowser = hasChromium || process.env.MIST_REQUIRE_SERVICES ? test : test.skip;

test.before(() => assertBuilt());

interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('GET /mist-client.js serves one ES module that imports nothing, to any page, with an ETag', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['http://127.0.0.1:0'] });
  const url = `${server.url('http')}/mist-client.js`;
  const served = await get(url, { origin: 'https://elsewhere.example' });
  t.is(served.status, 200);
  t.is(served.headers['content-type'], 'text/javascript; charset=utf-8');
  t.is(served.headers['access-control-allow-origin'], '*');
  t.regex(served.body, /^export \{[^}]*\bconnect\b[^}]*\};$/m, 'exports connect');
  t.notRegex(served.body, /^import |\bimport\(|\brequire\(/m, 'bundled whole: no Node module, nothing to fetch');
  t.is((await get(url, { 'if-none-match': served.headers.etag as string })).status, 304);
  const map = await get(`${server.url('http')}/mist-client.js.map`);
  t.is(map.status, 200);
  t.true((JSON.parse(map.body) as { sources: string[] }).sources.some((source) => source.endsWith('client/client.ts')));
});

/** A fresh headless Chromium with a page loaded from `origin`, closed at teardown. */
async function pageAt(t: ExecutionContext, origin: string): Promise<Page> {
  const profile = await tempFolder(t);
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (err) => t.log(`page error: ${err.message}`));
  // Any page of the listener's will do: its origin is the server's, loopback, allowed by default.
  await page.goto(`${origin}/ping`);
  return page;
}

inBrowser('a page imports /mist-client.js, subscribes over WebSocket and receives a publish; its publish reaches Node', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'] });
  const page = await pageAt(t, server.url('http'));
  // A string, run as the page's own script: the import is the page's, not Node's.
  const state = await page.evaluate(`(async () => {
    const { connect } = await import('/mist-client.js');
    const client = await connect('ws://' + location.host); // the http listener serves /subscribe/websocket
    await client.subscribe(['news']);
    const messages = client.messages();
    window.firstMessage = messages.next().then(({ value }) => ({ tags: value.tags, data: value.data }));
    window.client = client;
    return client.state;
  })()`);
  t.is(state, 'open');

  const node = await connect(server.url('tcp'), { reconnect: false });
  t.teardown(() => node.close());
  await node.subscribe(['from-browser']);
  const fromBrowser = node.messages();
  await node.publish(['news', 'sports'], 'hello browser');
  t.deepEqual(await page.evaluate('window.firstMessage'), { tags: ['news', 'sports'], data: 'hello browser' });

  await page.evaluate(`window.client.publish(['from-browser'], { sent: 'by a page' })`);
  t.like((await fromBrowser.next()).value, { tags: ['from-browser'], data: { sent: 'by a page' } });
  t.is(await page.evaluate('window.client.close().then(() => window.client.state)'), 'closed');
});

inBrowser('with an authenticator, a page authenticates with auth; a wrong token is refused with the server\'s error', async (t) => {
  const { server } = await startTestServer(t, { listeners: ['http://127.0.0.1:0'], authenticator: 'memory://', token: 'admin-secret' });
  const page = await pageAt(t, server.url('http'));
  const outcome = await page.evaluate(`(async () => {
    const { connect, MistReplyError } = await import('/mist-client.js');
    const url = 'ws://' + location.host;
    const admin = await connect(url, { token: 'admin-secret', reconnect: false });
    await admin.subscribe(['secret']);
    const subscribed = await admin.list();
    await admin.close();
    const refused = await connect(url, { token: 'wrong', reconnect: false }).then(
      () => 'connected',
      (err) => ({ replyError: err instanceof MistReplyError, code: err.code, reply: err.reply }),
    );
    const anonymous = await connect(url, { reconnect: false });
    const unauthenticated = await anonymous.subscribe(['secret']).then(() => 'subscribed', (err) => err.code);
    await anonymous.close();
    return { subscribed, refused, unauthenticated };
  })()`);
  t.like(outcome, {
    subscribed: [['secret']],
    refused: { replyError: true, code: 'MIST_ERR_REPLY', reply: { command: 'auth' } },
    unauthenticated: 'MIST_ERR_REPLY',
  });
});
