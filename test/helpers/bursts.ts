/**
 * One check every stream transport shares: what is queued for the next
 * flush counts towards `maxBufferedBytes`.
 */
import type { ExecutionContext } from 'ava';
import type { Message } from '../../core/protocol.ts';
import type { startTestServer } from './server.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>['server'];

/**
 * Publishes 40 messages of about 100 bytes to `q` in one turn, so that all
 * queue before the flush, for `sub` (subscribed to `q`, on a server with
 * `maxBufferedBytes` 1024 and a flush interval): some must be dropped, and
 * the first ones arrive, in order, each either received or counted dropped.
 */
export async function burstPastTheLimit(t: ExecutionContext, server: Server, sub: { next(): Promise<Message>; sync(): Promise<void>; pending: number }): Promise<void> {
  const COUNT = 40;
  const pad = 'x'.repeat(80);
  // One client's write would not ensure one turn: a session handles a slice of its input per turn.
  for (let seq = 0; seq < COUNT; seq++) server.broker.publish(undefined, ['q'], JSON.stringify({ seq, pad }));
  const dropped = server.connections.delivery.dropped;
  t.true(dropped > 0, 'the queue reached the limit');
  const seqs: number[] = [];
  for (let i = 0; i < COUNT - dropped; i++) seqs.push(((await sub.next()).data as { seq: number }).seq);
  await sub.sync();
  t.is(sub.pending, 0, 'each message was delivered or counted dropped, not both');
  t.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i),
    'the first ones, in order',
  );
}
