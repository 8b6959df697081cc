/**
 * History across a cluster, over the real Redis (Streams) and NATS
 * (JetStream): ids are the stream's, the same on every node, and a client
 * resumes on another node than the one it left. Skipped, like the other
 * cluster tests, only when a service is unreachable and
 * MIST_REQUIRE_SERVICES is unset.
 */
import test, { type ExecutionContext } from 'ava';
import type { Message } from '../core/protocol.ts';
import { clusterUri, ServiceProcess, serviceAvailable, uniquePrefix } from './helpers/backplane-services.ts';
import { client, startCluster, subscribe } from './helpers/cluster-scenarios.ts';
import { GAP, publishRange, range, resume, SUCCESS } from './helpers/resume.ts';
import { eventually, startTestServer } from './helpers/server.ts';

const data = (messages: Message[]): unknown[] => messages.map((message) => message.data);

// Every test is declared at once, after both services are looked for.
const services = await Promise.all(
  (['redis', 'nats'] as const).map(async (kind) => ({ kind, available: await serviceAvailable(kind).catch((err: Error) => err) })),
);

for (const { kind, available } of services) {
  if (available instanceof Error) {
    test(`${kind} is reachable`, (t) => t.fail(available.message));
    continue;
  }
  const it = (title: string, body: (t: ExecutionContext) => Promise<void>): void => (available ? test : test.skip)(`${kind}: ${title}`, body);
  const uri = (name: string, port?: number): string => clusterUri(kind, uniquePrefix(name), port);

  it('ids are the same on every node, and a client resumes on another node: exactly what it missed, in order, then live ones', async (t) => {
    const [a, b] = await startCluster(t, 2, uri('resume'));
    const onA = await client(t, a!);
    const onB = await client(t, b!);
    await subscribe(t, onA, ['news']);
    await subscribe(t, onB, ['news']);
    const publisher = await client(t, a!);
    publisher.send({ command: 'publish', tags: ['news'], data: 'seen' });
    const seen = await onA.next();
    t.deepEqual(await onB.next(), seen, 'the same message, id and all, on both nodes');
    t.is(a!.server.history.seqOf(seen.id!), b!.server.history.seqOf(seen.id!));
    onA.close();

    await publishRange(publisher, ['news'], 0, 100);
    const back = await client(t, b!);
    await subscribe(t, back, ['news']);
    const { messages, reply } = await resume(back, seen.id!);
    t.deepEqual(reply, SUCCESS);
    t.deepEqual(data(messages), range(0, 100));
    t.deepEqual(messages, (await Promise.all(range(0, 100).map(() => onB.next()))), 'as the other client on B got them live');
    publisher.send({ command: 'publish', tags: ['news'], data: 'live' });
    t.is((await back.next()).data, 'live');
  });

  it('a node that joins later serves resumes from the stream it read when it joined', async (t) => {
    const prefix = uniquePrefix('joiner');
    const [a] = await startCluster(t, 1, clusterUri(kind, prefix));
    const early = await client(t, a!);
    await subscribe(t, early, ['x']);
    const publisher = await client(t, a!);
    publisher.send({ command: 'publish', tags: ['x'], data: 'seen' });
    const { id } = await early.next();
    await publishRange(publisher, ['x'], 0, 30);
    await eventually(() => a!.server.history.size === 31, undefined, 'node A has read its publishes back');

    const { server: b } = await startTestServer(t, { cluster: clusterUri(kind, prefix) });
    await eventually(() => b.history.size === 31, undefined, "node B has read the stream's past");
    const back = await client(t, { server: b, logs: [] });
    await subscribe(t, back, ['x']);
    t.deepEqual(await resume(back, id!), { messages: (await Promise.all(range(0, 30).map(() => early.next()))), reply: SUCCESS });
    await back.sync();
    t.is(back.pending, 0, 'the past was not delivered live');
  });

  it('a node shutting down delivers to its own subscribers the publishes still on their way through the stream', async (t) => {
    const [a] = await startCluster(t, 1, uri('drain'));
    const subscriber = await client(t, a!);
    await subscribe(t, subscriber, ['d']);
    const publisher = await client(t, a!);
    let batch = '';
    for (let n = 0; n < 200; n++) batch += JSON.stringify({ command: 'publish', tags: ['d'], data: n }) + '\n';
    publisher.write(batch);
    await publisher.sync();
    const closed = a!.server.close();
    const received: unknown[] = [];
    for (let message = await subscriber.next(); ; message = await subscriber.next()) {
      received.push(message.data);
      if (message.data === 199) break;
    }
    await closed;
    t.deepEqual(received, range(0, 200));
  });

  it('losing the backplane: local delivery goes on; a resume across the outage on another node says gap', async (t) => {
    const service = await ServiceProcess.start(t, kind);
    const [a, b] = await startCluster(t, 2, uri('outage', service.port));
    const leaving = await client(t, a!);
    const staying = await client(t, a!);
    await subscribe(t, leaving, ['r']);
    await subscribe(t, staying, ['r']);
    const publisher = await client(t, a!);
    publisher.send({ command: 'publish', tags: ['r'], data: 'before' });
    const { id } = await leaving.next();
    t.is((await staying.next()).data, 'before');
    leaving.close();

    await service.stop();
    await eventually(() => a!.server.cluster!.state === 'down', 10_000, 'backplane down');
    publisher.send({ command: 'publish', tags: ['r'], data: 'during' });
    t.is((await staying.next()).data, 'during', 'delivered on its own node at once');
    t.is(a!.server.cluster!.stats.unstreamed, 1);

    await service.resume();
    await eventually(() => a!.server.cluster!.state === 'up' && b!.server.cluster!.state === 'up', 20_000, 'backplane back');
    publisher.send({ command: 'publish', tags: ['r'], data: 'after' });
    t.is((await staying.next()).data, 'after');
    await eventually(() => b!.server.history.size > 0 && b!.server.history.gapAfter(0), 10_000, 'node B knows of the gap');
    const back = await client(t, b!);
    await subscribe(t, back, ['r']);
    const { messages, reply } = await resume(back, id!);
    t.deepEqual(reply, GAP, '"during" never reached the stream');
    t.true(data(messages).includes('after'));
    t.false(data(messages).includes('during'));
  });
}

(services[0]!.available === true ? test : test.skip)('a cluster with history off carries no ids and answers resume with gap', async (t) => {
  const [a] = await startCluster(t, 1, clusterUri('redis', uniquePrefix('off')), { history: false });
  const sub = await client(t, a!);
  await subscribe(t, sub, ['a']);
  (await client(t, a!)).send({ command: 'publish', tags: ['a'], data: 1 });
  t.deepEqual(await sub.next(), { command: 'publish', tags: ['a'], data: 1 });
  t.deepEqual(await resume(sub, '1-0'), { messages: [], reply: GAP });
});

