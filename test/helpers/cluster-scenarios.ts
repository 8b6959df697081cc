/**
 * The cluster behaviours every backplane must show, registered
 * once per backplane by test/cluster.redis.test.ts and
 * test/cluster.nats.test.ts. Each test runs two or three real mist nodes in
 * this process against the real service, on a channel prefix of its own.
 */
import test, { type ExecutionContext } from 'ava';
import type { ConfigFile } from '../../host/config-schema.ts';
import type { MistServer } from '../../host/server.ts';
import type { Message } from '../../core/protocol.ts';
import { ChannelTap, clusterUri, dropHistory, ServiceProcess, serviceAvailable, uniquePrefix, type BackplaneKind } from './backplane-services.ts';
import { eventually, LineClient, startTestServer, type LogLines, withoutId, lineWithoutId } from './server.ts';
import { WAIT_MS } from './wakeup.ts';

interface Node {
  server: MistServer;
  logs: LogLines;
}

/** Starts `count` nodes on `uri` and waits until each is connected and knows the others; their history stream goes at teardown. */
export async function startCluster(t: ExecutionContext, count: number, uri: string, config: ConfigFile = {}): Promise<Node[]> {
  t.teardown(() => dropHistory(uri));
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startTestServer(t, { cluster: uri, ...config }));
  await formed(nodes);
  return nodes;
}

/** What each node says of itself, its cluster status and its warnings, for a failure's message. */
function describeNodes(nodes: readonly Node[]): string {
  return nodes
    .map(({ server, logs }, i) => {
      const warnings = logs.filter((line) => line.level === 'warn' || line.level === 'error').map(({ msg, err }) => ({ msg, err }));
      return `node ${i}: ${JSON.stringify(server.cluster!.status())}, warnings ${JSON.stringify(warnings)}`;
    })
    .join('; ');
}

async function formed(nodes: readonly Node[], timeoutMs = 10_000): Promise<void> {
  await eventually(
    () => nodes.every(({ server }) => server.cluster!.state === 'up' && server.cluster!.status().peers === nodes.length - 1),
    timeoutMs,
    'cluster formed',
  );
}

/** Waits until `node` knows of `count` distinct subscriptions held elsewhere. */
export async function remoteInterest(node: Node, count: number): Promise<void> {
  await eventually(() => node.server.cluster!.status().remoteSubscriptions === count, WAIT_MS, `${count} remote subscriptions`);
}

export async function client(t: ExecutionContext, node: Node): Promise<LineClient> {
  return LineClient.connect(t, node.server.url('tcp'));
}

export async function subscribe(t: ExecutionContext, c: LineClient, tags: string[]): Promise<void> {
  t.deepEqual(await c.request({ command: 'subscribe', tags }), { command: 'subscribe', tags, data: 'success' });
}

function publication(tags: string[], data: unknown): Message {
  return { command: 'publish', tags, data } as Message;
}

/**
 * Registers the shared cluster tests for one backplane (await it at the top
 * level of the test file). Skipped when the service is unreachable and
 * `MIST_REQUIRE_SERVICES` is unset; with it set, an unreachable service fails.
 */
export async function clusterTests(kind: BackplaneKind): Promise<void> {
  let available: boolean;
  try {
    available = await serviceAvailable(kind);
  } catch (err) {
    // Required and unreachable: one failing test that says so, rather than a crash of the file.
    test(`${kind} is reachable`, (t) => t.fail((err as Error).message));
    return;
  }
  const uri = (name: string, query = ''): string => clusterUri(kind, uniquePrefix(name), undefined, query);
  const it = (title: string, body: (t: ExecutionContext) => Promise<void>): void => {
    (available ? test : test.skip)(`${kind}: ${title}`, body);
  };

  it('a publish on one node reaches matching subscribers on every node, and not the publisher', async (t) => {
    const nodes = await startCluster(t, 3, uri('fanout'));
    const [a, b, c] = nodes as [Node, Node, Node];
    const publisher = await client(t, a);
    const local = await client(t, a);
    const onB = await client(t, b);
    const onC = await client(t, c);
    await subscribe(t, publisher, ['fish']);
    await subscribe(t, local, ['fish']);
    await subscribe(t, onB, ['fish']);
    await subscribe(t, onC, ['fish', 'red']);
    await remoteInterest(a, 2);
    const expected = '{"command":"publish","tags":["fish","red"],"data":{"n":12345678901234567890}}';
    publisher.write(expected + '\n');
    t.is(lineWithoutId(await local.nextLine()), expected);
    t.is(lineWithoutId(await onB.nextLine()), expected, 'data forwarded verbatim, big number and all');
    t.is(lineWithoutId(await onC.nextLine()), expected);
    // A later publish from elsewhere arrives after any echo of the first would have: the publisher's next line is it.
    onB.send(publication(['fish'], 'marker'));
    t.deepEqual(withoutId(await publisher.next()), publication(['fish'], 'marker'));
  });

  it('a subscriber holding several matching subscriptions gets each message once, from any node', async (t) => {
    const nodes = await startCluster(t, 3, uri('once'));
    const [a, b, c] = nodes as [Node, Node, Node];
    const subscriber = await client(t, b);
    for (const tags of [['a'], ['b'], ['a', 'b'], ['a', 'b', 'c']]) await subscribe(t, subscriber, tags);
    await remoteInterest(a, 4);
    await remoteInterest(c, 4);
    const fromA = await client(t, a);
    const fromC = await client(t, c);
    fromA.send(publication(['a', 'b', 'c'], 'one'));
    t.deepEqual(withoutId(await subscriber.next()), publication(['a', 'b', 'c'], 'one'));
    fromC.send(publication(['c', 'b', 'a'], 'two'));
    t.deepEqual(withoutId(await subscriber.next()), publication(['c', 'b', 'a'], 'two'));
    // Markers from both publishers: anything duplicated would have come before them.
    fromA.send(publication(['a'], 'end-a'));
    fromC.send(publication(['b'], 'end-c'));
    const rest = [await subscriber.next(), await subscriber.next()].map((m) => m.data).sort();
    t.deepEqual(rest, ['end-a', 'end-c']);
    await subscriber.sync();
    t.is(subscriber.pending, 0);
  });

  it('1000 messages published on one node arrive in order on another', async (t) => {
    const [a, b] = (await startCluster(t, 2, uri('order'))) as [Node, Node];
    const subscriber = await client(t, b);
    await subscribe(t, subscriber, ['seq']);
    await remoteInterest(a, 1);
    const publisher = await client(t, a);
    let batch = '';
    for (let i = 0; i < 1000; i++) batch += JSON.stringify(publication(['seq'], i)) + '\n';
    publisher.write(batch);
    const received: number[] = [];
    for (let i = 0; i < 1000; i++) {
      // Seen once under heavy load: no message for 30 s. Say how far it got and what the nodes knew.
      const message = await subscriber.next().catch((err: Error) => {
        throw new Error(`after ${i} of 1000: ${err.message}; ${describeNodes([a, b])}`);
      });
      received.push(message.data as number);
    }
    t.deepEqual(received, Array.from({ length: 1000 }, (_, i) => i));
    t.is(b.server.cluster!.status().stats.lost, 0);
  });

  // Without history, messages cross on the pub/sub channel <prefix>.msg; with it, through the stream (resume.cluster.test.ts).
  const PUB_SUB = { history: false } as const;

  it('messages received from the backplane are not sent to it again', async (t) => {
    const prefix = uniquePrefix('rebroadcast');
    const nodes = await startCluster(t, 3, clusterUri(kind, prefix), PUB_SUB);
    const [a, b, c] = nodes as [Node, Node, Node];
    const tap = await ChannelTap.open(t, kind, `${prefix}.msg`);
    const subscribers = [await client(t, a), await client(t, b), await client(t, c)];
    for (const s of subscribers) await subscribe(t, s, ['x']);
    await remoteInterest(a, 1);
    const publisher = await client(t, a);
    publisher.send(publication(['x'], 1));
    publisher.send(publication(['x'], 2));
    for (const s of subscribers) {
      t.is((await s.next()).data, 1);
      t.is((await s.next()).data, 2);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.is(tap.count, 2, 'one envelope per publish on the channel');
    t.is(a.server.cluster!.status().stats.forwarded, 2);
    for (const node of [b, c]) {
      t.is(node.server.cluster!.status().stats.forwarded, 0);
      t.is(node.server.cluster!.status().stats.received, 2);
    }
  });

  it('a node sends nothing that no other node has a subscription for', async (t) => {
    const prefix = uniquePrefix('interest');
    const [a, b] = (await startCluster(t, 2, clusterUri(kind, prefix), PUB_SUB)) as [Node, Node];
    const tap = await ChannelTap.open(t, kind, `${prefix}.msg`);
    const subscriber = await client(t, b);
    await subscribe(t, subscriber, ['x']);
    await remoteInterest(a, 1);
    const publisher = await client(t, a);
    publisher.send(publication(['y'], 'nobody'));
    await publisher.sync();
    t.is(a.server.cluster!.status().stats.skipped, 1);
    publisher.send(publication(['x', 'y'], 'wanted'));
    t.is((await subscriber.next()).data, 'wanted');
    t.deepEqual(await subscriber.request({ command: 'unsubscribe', tags: ['x'] }), { command: 'unsubscribe', tags: ['x'], data: 'success' });
    await remoteInterest(a, 0);
    publisher.send(publication(['x'], 'no longer'));
    await publisher.sync();
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.is(tap.count, 1, 'only the wanted message crossed the backplane');
    t.like(a.server.cluster!.status().stats, { skipped: 2, forwarded: 1 });
  });

  it('/metrics shows the backplane up, the peers, and what was forwarded', async (t) => {
    const [a, b] = (await startCluster(t, 2, uri('metrics'))) as [Node, Node];
    await subscribe(t, await client(t, b), ['m']);
    await remoteInterest(a, 1);
    (await client(t, a)).send(publication(['m'], 'x'));
    await eventually(() => a.server.cluster!.stats.forwarded === 1, WAIT_MS, 'forwarded');
    const text = await a.server.metrics.render();
    t.regex(text, /^mist_cluster_backplane_up 1$/m);
    t.regex(text, /^mist_cluster_peers 1$/m);
    t.regex(text, /^mist_cluster_remote_subscriptions 1$/m);
    t.regex(text, /^mist_cluster_forwarded_total 1$/m);
  });

  it('with interest=off every local publish is forwarded, still once', async (t) => {
    const prefix = uniquePrefix('all');
    const [a, b] = (await startCluster(t, 2, clusterUri(kind, prefix, undefined, '&interest=off'), PUB_SUB)) as [Node, Node];
    const tap = await ChannelTap.open(t, kind, `${prefix}.msg`);
    const publisher = await client(t, a);
    publisher.send(publication(['nobody'], 1));
    await publisher.sync();
    await eventually(() => b.server.cluster!.status().stats.received === 1);
    t.is(tap.count, 1);
    t.is(a.server.cluster!.status().stats.skipped, 0);
  });

  it('losing the backplane keeps local delivery going; the node reconnects and cross-node delivery resumes', async (t) => {
    const service = await ServiceProcess.start(t, kind);
    const [a, b] = (await startCluster(t, 2, clusterUri(kind, uniquePrefix('restart'), service.port))) as [Node, Node];
    const local = await client(t, a);
    const remote = await client(t, b);
    await subscribe(t, local, ['r']);
    await subscribe(t, remote, ['r']);
    await remoteInterest(a, 1);
    const publisher = await client(t, a);
    publisher.send(publication(['r'], 'before'));
    t.is((await local.next()).data, 'before');
    t.is((await remote.next()).data, 'before');

    await service.stop();
    await eventually(() => a.server.cluster!.state === 'down' && b.server.cluster!.state === 'down', 10_000, 'backplane down');
    t.true(a.logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('backplane lost')));
    publisher.send(publication(['r'], 'during'));
    t.is((await local.next()).data, 'during', 'local delivery goes on');
    t.is(a.server.cluster!.status().stats.dropped, 1, 'the cross-node copy is dropped and counted');

    await service.resume();
    await formed([a, b], 20_000);
    t.true(a.logs.some((l) => l.level === 'info' && l.msg === 'backplane reconnected'));
    t.is(a.server.cluster!.status().stats.reconnects, 1);
    // The other node's subscription may be restored a moment after this one's: at-most-once, so retry.
    let received: Message | undefined;
    for (let i = 0; i < 50 && !received; i++) {
      publisher.send(publication(['r'], `after`));
      t.is((await local.next()).data, 'after');
      received = await remote.next(200).catch(() => undefined);
    }
    t.is(received?.data, 'after');
  });
}
