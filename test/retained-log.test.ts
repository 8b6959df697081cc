/**
 * History's store (core/retained-log.ts): messages kept as bytes in slabs
 * and typed arrays read back exactly as they went in, in order, across ring
 * growth, slab boundaries, messages larger than a slab and multi-byte
 * text; and History reads a retained message's tags back whatever they hold.
 */
import { getHeapStatistics } from 'node:v8';
import test from 'ava';
import fc from 'fast-check';
import { History } from '../core/history.ts';
import { RetainedLog } from '../core/retained-log.ts';

interface Kept {
  json: string;
  publisher: number;
  time: number;
}

test('what is pushed reads back the same, oldest first, through any mix of pushes and shifts', (t) => {
  const text = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 50 }), fc.constant('x'.repeat(70_000)));
  const step = fc.oneof(fc.record({ push: text, publisher: fc.nat(), time: fc.double({ noNaN: true }) }), fc.constant('shift' as const));
  fc.assert(
    fc.property(fc.array(step, { maxLength: 3000 }), (steps) => {
      const log = new RetainedLog();
      const model: Kept[] = [];
      for (const s of steps) {
        if (s === 'shift') {
          if (model.length === 0) continue;
          log.shift();
          model.shift();
        } else {
          log.push(s.push, Buffer.byteLength(s.push), s.publisher, s.time);
          model.push({ json: s.push, publisher: s.publisher, time: s.time });
        }
      }
      if (log.length !== model.length) return false;
      if (log.textBytes !== model.reduce((sum, kept) => sum + Buffer.byteLength(kept.json), 0)) return false;
      return model.every((kept, i) => log.json(i) === kept.json && log.publisherOf(i) === kept.publisher && Object.is(log.timeOf(i), kept.time));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('a retained message reads back with its tags, id and frame, whatever its tags hold', (t) => {
  const history = new History({ maxMessages: 10, maxBytes: 1_000_000, maxAgeMs: 60_000 });
  const tags = ['a]', 'quote"]', 'back\\slash', 'ünïcødé ✓', '[', ','];
  const sent = history.record(7, tags, '{"x":[1,"]"]}');
  const retained = history.at(history.lastSeq)!;
  t.deepEqual(retained.tags, tags);
  t.is(retained.publisher, 7);
  t.is(retained.frame.json, sent.json);
  t.is(retained.frame.id, sent.id);
  t.deepEqual(retained.frame.line, sent.line);
});

test('a stream\'s id reads back with its message, and is forgotten when the message is trimmed', (t) => {
  const history = new History({ maxMessages: 2, maxBytes: 1_000_000, maxAgeMs: 60_000 });
  for (const id of ['1-0', '2-0', '3-0']) history.record(0, ['s'], `"${id}"`, id, Date.now());
  t.is(history.seqOf('1-0'), undefined, 'trimmed');
  t.is(history.at(history.seqOf('3-0')!)!.frame.id, '3-0');
  t.is(history.at(history.firstSeq)!.frame.id, '2-0');
});

test('thousands of messages through a short window: the ring grows, reads stay right, and slabs no longer used are let go', (t) => {
  const log = new RetainedLog();
  const message = (n: number) => `{"n":${n},"pad":"${'p'.repeat(1000 + (n % 7))}"}`;
  // 5,000 kept: the ring grows past its first 1,024; then 200,000 more (about 200 MB) through a window of 5,000.
  for (let n = 0; n < 5000; n++) log.push(message(n), Buffer.byteLength(message(n)), n, n);
  for (let n = 5000; n < 205_000; n++) {
    log.shift();
    log.push(message(n), Buffer.byteLength(message(n)), n, n);
  }
  t.is(log.length, 5000);
  for (const i of [0, 1, 2500, 4999]) {
    t.is(log.json(i), message(200_000 + i));
    t.is(log.publisherOf(i), 200_000 + i);
  }
  // Kept, about 5 MB; had the slabs of shifted messages been held, 200 MB. (This isolate's external memory:
  // the process's counts other test files' too, when they run as worker threads of one process.)
  const external = getHeapStatistics().external_memory;
  t.true(external < 100e6, `${external} bytes of external memory`);
});
