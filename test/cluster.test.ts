/**
 * The cluster core (core/cluster.ts) without a network: envelope, URI
 * options, start-up with the backplane unreachable, and the interest
 * protocol's repairs (lost delta, silent peer) over an in-process bus.
 */
import 'reflect-metadata';
import test from 'ava';
import type { Backplane, BackplaneContext, BackplaneFactory } from '../core/backplane.ts';
import { Broker } from '../core/broker.ts';
import { Cluster, clusterOptions, decodeEnvelope, encodeEnvelope } from '../core/cluster.ts';
import { ErrorCodes } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import type { Session } from '../core/session.ts';
import { DEFAULT_LIMITS } from '../host/defaults.ts';
import { freePort } from './helpers/backplane-services.ts';
import { eventually, LineClient, logCapture, startTestServer, type LogLines, withoutId } from './helpers/server.ts';
import { WAIT_MS } from './helpers/wakeup.ts';

test('an envelope carries node, sequence, tags and the data text verbatim', (t) => {
  const data = '{"n":12345678901234567890,"s":"line\\nbreak"}';
  const payload = encodeEnvelope('n1', 7, ['b', 'a', 'a'], data);
  t.deepEqual(decodeEnvelope(payload), { node: 'n1', seq: 7, tags: ['b', 'a', 'a'], data });
  t.deepEqual(decodeEnvelope(encodeEnvelope('n1', 8, ['a'], undefined)), { node: 'n1', seq: 8, tags: ['a'], data: undefined });
  for (const bad of ['', 'm1\nn1\n1\n[]\n', 'm2\nn1\n1\n["a"]\n1', 'm1\nn1\nx\n["a"]\n1', 'm1\nn1\n1\n[1]\n1', 'm1\nn1\n1\n{\n1']) {
    t.is(decodeEnvelope(bad), undefined, JSON.stringify(bad));
  }
});

test('cluster URI options: prefix, interest, heartbeat, and clear errors', (t) => {
  t.deepEqual(clusterOptions(new URL('redis://h:1')), { prefix: 'mist', interest: true, heartbeatMs: 5000 });
  t.deepEqual(clusterOptions(new URL('nats://h:1?prefix=prod.eu-1&interest=off&heartbeat=250')), {
    prefix: 'prod.eu-1',
    interest: false,
    heartbeatMs: 250,
  });
  for (const query of ['prefix=a b', 'prefix=a.*', 'prefix=', 'interest=yes', 'heartbeat=10', 'heartbeat=x']) {
    const err = t.throws(() => clusterOptions(new URL(`redis://h:1?${query}`)));
    t.like(err, { code: ErrorCodes.CONFIG, key: 'cluster' }, query);
  }
});

test('an unknown backplane scheme fails start-up naming the known ones', async (t) => {
  const err = await t.throwsAsync(startTestServer(t, { cluster: 'kafka://127.0.0.1:9092' }));
  t.like(err, { code: ErrorCodes.UNKNOWN_SCHEME, key: 'cluster' });
  t.regex(err!.message, /known: .*nats.*redis/);
});

for (const kind of ['redis', 'nats'] as const) {
  test(`${kind}: a node starts with its backplane unreachable, delivers locally and closes promptly`, async (t) => {
    const port = await freePort();
    const { server, logs } = await startTestServer(t, { cluster: `${kind}://127.0.0.1:${port}` });
    await eventually(() => server.cluster!.state === 'down', WAIT_MS, 'state down');
    t.true(logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('backplane unreachable')));
    const subscriber = await LineClient.connect(t, server.url('tcp'));
    const publisher = await LineClient.connect(t, server.url('tcp'));
    await subscriber.request({ command: 'subscribe', tags: ['a'] });
    publisher.send({ command: 'publish', tags: ['a'], data: 1 });
    t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['a'], data: 1 });
    const started = Date.now();
    await server.close();
    t.true(Date.now() - started < 2000, 'close does not wait for the backplane');
    t.is(server.cluster!.state, 'closed');
  });
}

/** An in-process backplane: every node's payloads reach every node (echo included), in order. */
class Bus {
  readonly nodes = new Set<BackplaneContext>();
  /** Every node that ever joined, in order. */
  readonly joined: BackplaneContext[] = [];
  /** Nodes cut off: what they send goes nowhere. */
  readonly cut = new Set<BackplaneContext>();
  /** Drops the next payload on a channel whose name ends with this, once. */
  dropNext: string | undefined;
  readonly factory: BackplaneFactory = (_url, context) => {
    this.nodes.add(context);
    this.joined.push(context);
    queueMicrotask(() => context.connected());
    const backplane: Backplane = {
      publish: (channel, payload) => {
        if (this.cut.has(context)) return true;
        if (this.dropNext && channel.endsWith(this.dropNext)) {
          this.dropNext = undefined;
          return true;
        }
        for (const node of this.nodes) queueMicrotask(() => node.receive(channel, payload));
        return true;
      },
      close: async () => {
        this.nodes.delete(context);
      },
    };
    return backplane;
  };
}

function fakeSession(): Session {
  return { isOpen: true, subscriptions: new Map(), subscribedAt: new Map(), stamp: 0, deliver() {} } as unknown as Session;
}

async function node(t: import('ava').ExecutionContext, bus: Bus, query = ''): Promise<{ cluster: Cluster; broker: Broker; logs: LogLines }> {
  const logs: LogLines = [];
  const logger = createLogger('DEBUG', logCapture(logs));
  const broker = new Broker(DEFAULT_LIMITS, logger);
  const url = new URL(`bus://test?heartbeat=100${query}`);
  const cluster = new Cluster(broker, logger, url, url.href);
  await cluster.start(bus.factory);
  t.teardown(() => cluster.close());
  return { cluster, broker, logs };
}

test('a lost interest delta is noticed from the revision and repaired by a snapshot', async (t) => {
  const bus = new Bus();
  const a = await node(t, bus);
  const b = await node(t, bus);
  await eventually(() => a.cluster.status().peers === 1 && b.cluster.status().peers === 1);
  const session = fakeSession();
  b.broker.subscribe(session, ['x']);
  await eventually(() => a.cluster.status().remoteSubscriptions === 1);
  bus.dropNext = '.ctl';
  b.broker.subscribe(session, ['y']);
  // The heartbeat carries b's revision: a sees it is behind and asks for a snapshot.
  await eventually(() => a.cluster.status().remoteSubscriptions === 2, 2000, 'repaired');
  b.broker.forget(session);
  await eventually(() => a.cluster.status().remoteSubscriptions === 0);
  t.pass();
});

test('a peer that leaves says so; one that goes silent is forgotten after 3 heartbeats', async (t) => {
  const bus = new Bus();
  const a = await node(t, bus);
  const b = await node(t, bus);
  const c = await node(t, bus);
  await eventually(() => a.cluster.status().peers === 2);
  const session = fakeSession();
  c.broker.subscribe(session, ['z']);
  await eventually(() => a.cluster.status().remoteSubscriptions === 1);
  await b.cluster.close();
  await eventually(() => a.cluster.status().peers === 1);
  t.true(a.logs.some((l) => l.msg === 'peer left'));
  // c vanishes without a word (its process died): its interest goes with it.
  const lostC = bus.joined[2]!;
  bus.cut.add(lostC);
  bus.nodes.delete(lostC);
  await eventually(() => a.cluster.status().peers === 0, 2000, 'silent peer forgotten');
  t.is(a.cluster.status().remoteSubscriptions, 0);
  t.true(a.logs.some((l) => l.msg === 'peer went silent'));
});

test('a remote message is delivered locally and never handed back to the backplane', async (t) => {
  const bus = new Bus();
  const a = await node(t, bus);
  const b = await node(t, bus);
  await eventually(() => a.cluster.status().peers === 1 && b.cluster.status().peers === 1);
  const delivered: string[] = [];
  const session = { ...fakeSession(), deliver: (frame: { json: string }) => delivered.push(frame.json) } as unknown as Session;
  b.broker.subscribe(session, ['m']);
  await eventually(() => a.cluster.status().remoteSubscriptions === 1);
  a.broker.publish(undefined, ['m'], '"hi"');
  await eventually(() => delivered.length === 1);
  t.deepEqual(delivered, ['{"command":"publish","tags":["m"],"data":"hi"}']);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.like(a.cluster.status().stats, { forwarded: 1, echoes: 1, received: 0 });
  t.like(b.cluster.status().stats, { forwarded: 0, received: 1 });
});
