import test from 'ava';
import fc from 'fast-check';
import { LineFramer, type InputBudget } from '../core/framing.ts';

const OVERSIZED = Symbol('oversized');
const OVER_BUDGET = Symbol('over budget');
type FramerEvent = string | typeof OVERSIZED | typeof OVER_BUDGET;

/** Feeds `chunks` to a framer with limit `maxLineBytes`; returns what it reported, in order. */
function frame(maxLineBytes: number, chunks: readonly (string | Buffer)[]): FramerEvent[] {
  const events: FramerEvent[] = [];
  const framer = new LineFramer(maxLineBytes, {
    line: (bytes) => events.push(bytes.toString()),
    oversized: () => events.push(OVERSIZED),
    overBudget: () => events.push(OVER_BUDGET),
  });
  for (const chunk of chunks) framer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return events;
}

/** `bytes` cut into pieces of `size` bytes (the last may be shorter). */
function cut(bytes: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
  return pieces;
}

/** `bytes` cut at the given offsets (any order, duplicates and out-of-range ignored). */
function cutAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.filter((at) => at > 0 && at < bytes.length))].sort((a, b) => a - b);
  return [0, ...points].map((from, i) => bytes.subarray(from, points[i] ?? bytes.length));
}

/** Events as JSON text, for comparing and for failure messages. */
function show(events: readonly FramerEvent[]): string {
  return JSON.stringify(events.map((event) => (event === OVERSIZED ? { oversized: true } : event === OVER_BUDGET ? { overBudget: true } : event)));
}

const LIMIT = 1024 * 1024;

test('a \\n-terminated line is delivered without its newline', (t) => {
  t.deepEqual(frame(LIMIT, ['{"command":"ping"}\n']), ['{"command":"ping"}']);
});

test('a \\r\\n-terminated line is delivered without its \\r\\n', (t) => {
  t.deepEqual(frame(LIMIT, ['{"command":"ping"}\r\n']), ['{"command":"ping"}']);
});

test('a \\r\\n split between two chunks still ends the line without the \\r', (t) => {
  t.deepEqual(frame(LIMIT, ['ping\r', '\nnext\n']), ['ping', 'next']);
});

test('blank lines, \\n or \\r\\n, are ignored', (t) => {
  t.deepEqual(frame(LIMIT, ['\n\r\n\n', 'one\n\n\r\ntwo\r\n', '\r\n', '\n']), ['one', 'two']);
});

test('a line without its newline yet is not delivered', (t) => {
  t.deepEqual(frame(LIMIT, ['complete\nincomple', 'te still']), ['complete']);
});

test('a line split into 1-byte chunks is delivered whole', (t) => {
  const line = '{"command":"publish","tags":["a","b"],"data":"hello"}';
  t.deepEqual(frame(LIMIT, cut(Buffer.from(`${line}\r\n${line}\n`), 1)), [line, line]);
});

test('a line split across many chunks of various sizes is delivered whole', (t) => {
  const line = 'x'.repeat(5000);
  for (const size of [2, 3, 7, 64, 1000, 4999, 5000]) {
    t.deepEqual(frame(LIMIT, cut(Buffer.from(`${line}\n`), size)), [line], `chunks of ${size}`);
  }
});

test('many lines in one chunk are delivered in order', (t) => {
  const lines = Array.from({ length: 1000 }, (_, i) => `{"n":${i}}`);
  t.deepEqual(frame(LIMIT, [lines.join('\n') + '\n']), lines);
});

test('a multi-byte UTF-8 character split across chunks decodes correctly', (t) => {
  for (const text of ['é', '€', '😀', 'a€b😀c']) {
    const bytes = Buffer.from(`${text}\n`);
    for (let at = 1; at < bytes.length - 1; at++) {
      t.deepEqual(frame(LIMIT, [bytes.subarray(0, at), bytes.subarray(at)]), [text], `${text} split at byte ${at}`);
    }
    t.deepEqual(frame(LIMIT, cut(bytes, 1)), [text], `${text} one byte at a time`);
  }
});

test('a lone \\r inside a line is kept', (t) => {
  t.deepEqual(frame(LIMIT, ['a\rb\n', '\rc\n', 'd\r\r\n']), ['a\rb', '\rc', 'd\r']);
});

test('a line exactly at the limit is accepted', (t) => {
  const line = 'x'.repeat(10);
  t.deepEqual(frame(10, [`${line}\n`]), [line], 'in one chunk');
  t.deepEqual(frame(10, cut(Buffer.from(`${line}\n`), 3)), [line], 'across chunks');
  t.deepEqual(frame(10, [line, '\n']), [line], 'newline in the next chunk');
});

test('a line exactly at the limit is accepted with \\r\\n, which is not part of the line', (t) => {
  const line = 'x'.repeat(10);
  t.deepEqual(frame(10, [`${line}\r\n`]), [line], 'in one chunk');
  t.deepEqual(frame(10, [`${line}\r`, '\n']), [line], '\\r\\n split between chunks');
  t.deepEqual(frame(10, [line, '\r\n']), [line], '\\r\\n in the next chunk');
  t.deepEqual(frame(10, cut(Buffer.from(`${line}\r\n`), 1)), [line], 'one byte at a time');
});

test('a line at the limit in multi-byte characters is accepted', (t) => {
  t.deepEqual(frame(6, ['€€\n']), ['€€']);
  t.deepEqual(frame(5, ['€€\n']), [OVERSIZED]);
});

test('a line one byte over the limit is rejected when its newline is in the same chunk', (t) => {
  t.deepEqual(frame(10, [`${'x'.repeat(11)}\n`]), [OVERSIZED]);
  t.deepEqual(frame(10, [`${'x'.repeat(11)}\r\n`]), [OVERSIZED]);
});

test('a line one byte over the limit is rejected when its newline comes in a later chunk', (t) => {
  t.deepEqual(frame(10, ['x'.repeat(6), `${'x'.repeat(5)}\n`]), [OVERSIZED]);
  t.deepEqual(frame(10, ['x'.repeat(10), 'x\n']), [OVERSIZED]);
  t.deepEqual(frame(10, ['x'.repeat(10), '\r', 'x\n']), [OVERSIZED], 'a \\r followed by more is part of the line');
});

test('a line over the limit is rejected before its newline arrives', (t) => {
  t.deepEqual(frame(10, ['x'.repeat(11)]), [OVERSIZED], 'in one chunk');
  t.deepEqual(frame(10, ['x'.repeat(4), 'x'.repeat(4), 'x'.repeat(3)]), [OVERSIZED], 'across chunks');
  t.deepEqual(frame(10, cut(Buffer.from('x'.repeat(11)), 1)), [OVERSIZED], 'one byte at a time');
  t.deepEqual(frame(10, ['ok\n', 'x'.repeat(11)]), ['ok', OVERSIZED], 'after a complete line');
});

test('a line at the limit whose chunk ends in \\r is not rejected before the \\n arrives', (t) => {
  t.deepEqual(frame(10, [`${'x'.repeat(10)}\r`]), []);
});

test('lines before an over-long one in the same chunk are delivered first', (t) => {
  t.deepEqual(frame(10, [`one\ntwo\r\n${'x'.repeat(11)}\nthree\n`]), ['one', 'two', OVERSIZED]);
});

test('nothing is delivered after oversized(), which is reported once', (t) => {
  const over = 'x'.repeat(11);
  t.deepEqual(frame(10, ['x'.repeat(6), `${'x'.repeat(5)}\nafter\n`, 'more\n', over, '\n']), [OVERSIZED]);
  t.deepEqual(frame(10, [over, over, '\nafter\n', 'more\n']), [OVERSIZED]);
  t.deepEqual(frame(10, [`${over}\n`, 'after\n', `${over}\n`]), [OVERSIZED]);
});

// --- A byte at a time, and the memory a line under way holds --------------

/** A budget that counts what is reserved from it, refusing past `limit`. */
class CountingBudget implements InputBudget {
  used = 0;
  constructor(private readonly limit = Infinity) {}
  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
  release(bytes: number): void {
    this.used -= bytes;
  }
}

/** A framer with a counting budget, and what it reported. */
function framerWith(maxLineBytes: number, budget: CountingBudget): { framer: LineFramer; events: FramerEvent[] } {
  const events: FramerEvent[] = [];
  const framer = new LineFramer(
    maxLineBytes,
    {
      line: (bytes) => events.push(bytes.toString()),
      oversized: () => events.push(OVERSIZED),
      overBudget: () => events.push(OVER_BUDGET),
    },
    budget,
  );
  return { framer, events };
}

test('a stream fed one byte at a time frames exactly as when fed whole', (t) => {
  const stream = Buffer.from('one\r\n\n\r\ntwo\rthree\n€😀\r\n\r\rfour\n');
  t.deepEqual(frame(LIMIT, cut(stream, 1)), frame(LIMIT, [stream]));
  t.deepEqual(frame(LIMIT, cut(stream, 1)), ['one', 'two\rthree', '€😀', '\r\rfour']);
});

test('a line fed one byte at a time is reported oversized at the byte that takes it over the limit, not before', (t) => {
  const { framer, events } = framerWith(10, new CountingBudget());
  for (let i = 0; i < 10; i++) framer.push(Buffer.from('x'));
  t.deepEqual(events, [], 'at the limit');
  framer.push(Buffer.from('\r'));
  t.deepEqual(events, [], 'a \\r that may end the line');
  framer.push(Buffer.from('x'));
  t.deepEqual(events, [OVERSIZED]);
});

test('a line fed one byte at a time holds at most twice its bytes, all of it reserved, and nothing once it ends', (t) => {
  const budget = new CountingBudget();
  const { framer, events } = framerWith(LIMIT, budget);
  const length = 100_000;
  let worst = 0;
  for (let fed = 1; fed <= length; fed++) {
    framer.push(Buffer.from('x'));
    if (framer.heldBytes < fed || framer.heldBytes > 2 * fed) return t.fail(`${framer.heldBytes} bytes held for a line of ${fed}`);
    if (budget.used !== framer.heldBytes) return t.fail(`${budget.used} bytes reserved, ${framer.heldBytes} held`);
    worst = Math.max(worst, framer.heldBytes / fed);
  }
  t.true(worst <= 2, `at most ${worst}× the line`);
  framer.push(Buffer.from('\n'));
  t.deepEqual(events, ['x'.repeat(length)]);
  t.is(framer.heldBytes, 0);
  t.is(budget.used, 0);
});

test('a line under way never holds more than the limit and a \\r', (t) => {
  const budget = new CountingBudget();
  const { framer, events } = framerWith(1000, budget);
  for (let i = 0; i < 1000; i++) framer.push(Buffer.from('x'));
  framer.push(Buffer.from('\r'));
  t.is(framer.heldBytes, 1001);
  framer.push(Buffer.from('\n'));
  t.deepEqual(events, ['x'.repeat(1000)]);
  t.is(budget.used, 0);
});

test('the memory of a line under way goes back to the budget when the line is oversized or the framer closes', (t) => {
  const budget = new CountingBudget();
  const oversized = framerWith(10, budget);
  oversized.framer.push(Buffer.from('x'.repeat(8)));
  t.true(budget.used >= 8);
  oversized.framer.push(Buffer.from('xxx'));
  t.deepEqual(oversized.events, [OVERSIZED]);
  t.is(budget.used, 0, 'after oversized()');

  const closed = framerWith(10, budget);
  closed.framer.push(Buffer.from('abc'));
  closed.framer.close();
  closed.framer.close();
  t.is(budget.used, 0, 'after close(), twice');
  closed.framer.push(Buffer.from('def\n'));
  t.deepEqual(closed.events, [], 'nothing is framed after close()');
  t.is(budget.used, 0);
});

test('a line that needs more than the budget has left is reported over budget once, after the lines before it', (t) => {
  const budget = new CountingBudget(16);
  const { framer, events } = framerWith(LIMIT, budget);
  framer.push(Buffer.from('one\ntwo\n0123456789'));
  t.deepEqual(events, ['one', 'two'], '10 bytes kept');
  framer.push(Buffer.from('0123456789'));
  t.deepEqual(events, ['one', 'two', OVER_BUDGET], '20 bytes would not fit');
  t.is(budget.used, 0);
  framer.push(Buffer.from('\nthree\n'));
  t.deepEqual(events, ['one', 'two', OVER_BUDGET]);
});

test('complete lines take nothing from the budget, however many', (t) => {
  const budget = new CountingBudget(0);
  const { framer, events } = framerWith(LIMIT, budget);
  framer.push(Buffer.from('a\nb\r\n\nc\n'));
  t.deepEqual(events, ['a', 'b', 'c']);
});

test('unfinishedSince is when the line under way began, NaN between lines', (t) => {
  const { framer } = framerWith(LIMIT, new CountingBudget());
  t.true(Number.isNaN(framer.unfinishedSince));
  framer.push(Buffer.from('done\n'));
  t.true(Number.isNaN(framer.unfinishedSince), 'after a complete line');
  const before = performance.now();
  framer.push(Buffer.from('under'));
  const since = framer.unfinishedSince;
  t.true(since >= before && since <= performance.now());
  framer.push(Buffer.from(' way'));
  t.is(framer.unfinishedSince, since, 'more of the same line does not restart it');
  framer.push(Buffer.from('\nnext'));
  t.true(framer.unfinishedSince >= since, 'the next line under way has its own start');
  framer.push(Buffer.from('\n'));
  t.true(Number.isNaN(framer.unfinishedSince));
});

// --- Properties -------------------------------------------------------------

/** A line: any code points (no half surrogates, so UTF-8 round-trips), `\r` often, no `\n`. */
const lineUnit = fc.oneof(fc.constant('\r'), fc.constant('€'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
const lineArbitrary = fc
  .string({ unit: lineUnit })
  .map((text) => text.replaceAll('\n', ''));

const terminatedLinesArbitrary = fc.array(fc.record({ text: lineArbitrary, crlf: fc.boolean() }), { maxLength: 30 });

/** Offsets at which to cut the stream into chunks (see cutAt). */
const cutsArbitrary = fc.array(fc.nat(400), { maxLength: 60 });

/** The bytes of the lines, each ended by `\r\n` or `\n`. */
function encode(lines: readonly { text: string; crlf: boolean }[]): Buffer {
  return Buffer.from(lines.map(({ text, crlf }) => text + (crlf ? '\r\n' : '\n')).join(''));
}

/** What a reader sees of a line: one `\r` before the `\n` belongs to the terminator. */
function delivered({ text, crlf }: { text: string; crlf: boolean }): string {
  return !crlf && text.endsWith('\r') ? text.slice(0, -1) : text;
}

test('random lines cut into random chunks come out identical', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(terminatedLinesArbitrary, cutsArbitrary, (lines, offsets) => {
        const expected = lines.map(delivered).filter((text) => text.length > 0);
        const got = frame(LIMIT, cutAt(encode(lines), offsets));
        if (show(got) !== show(expected)) throw new Error(`got ${show(got)}, expected ${show(expected)}`);
      }),
      { numRuns: 1000 },
    ),
  );
});

test('with any limit, lines up to the first over-long one come out, then oversized(), however the stream is cut', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(terminatedLinesArbitrary, fc.nat(40), cutsArbitrary, (lines, limit, offsets) => {
        const expected: FramerEvent[] = [];
        for (const line of lines) {
          const text = delivered(line);
          if (Buffer.byteLength(text) > limit) {
            expected.push(OVERSIZED);
            break;
          }
          if (text.length > 0) expected.push(text);
        }
        const got = frame(limit, cutAt(encode(lines), offsets));
        if (show(got) !== show(expected)) throw new Error(`limit ${limit}: got ${show(got)}, expected ${show(expected)}`);
      }),
      { numRuns: 1000 },
    ),
  );
});

test('however the stream is cut, the budget holds exactly what the framer keeps, at most twice the line under way', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(terminatedLinesArbitrary, lineArbitrary, cutsArbitrary, (lines, unfinished, offsets) => {
        const budget = new CountingBudget();
        const { framer } = framerWith(LIMIT, budget);
        const stream = Buffer.concat([encode(lines), Buffer.from(unfinished)]);
        let fed = 0;
        for (const chunk of cutAt(stream, offsets)) {
          framer.push(chunk);
          fed += chunk.length;
          const underWay = fed - (stream.lastIndexOf(0x0a, fed - 1) + 1);
          if (budget.used !== framer.heldBytes) throw new Error(`${budget.used} reserved, ${framer.heldBytes} held`);
          if (framer.heldBytes > 2 * underWay) throw new Error(`${framer.heldBytes} held for ${underWay} bytes under way`);
        }
        framer.close();
        if (budget.used !== 0) throw new Error(`${budget.used} still reserved after close()`);
      }),
      { numRuns: 1000 },
    ),
  );
});
