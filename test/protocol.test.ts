import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { DEFAULT_LIMITS } from '../host/defaults.ts';
import type { Limits } from '../core/limits.ts';
import { CommandError } from '../core/errors.ts';
import { Frame, INVALID_MESSAGE_COMMAND, parseRequest } from '../core/protocol.ts';
import { canonicalTags, tagSetKey } from '../core/tags.ts';
import { compareTagSets } from '../plugins/commands/tag-sets.ts';

function limits(overrides: Partial<Limits> = {}): Limits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

/** Parses `input` (a string as received, or a value to encode as JSON) expecting a refusal. */
function refused(t: ExecutionContext, input: unknown, overrides: Partial<Limits> = {}): CommandError {
  const text = typeof input === 'string' ? input : JSON.stringify(input);
  const error = t.throws(() => parseRequest(text, limits(overrides)), { instanceOf: CommandError });
  if (!error) throw new Error(`parseRequest accepted ${text}`);
  return error;
}

/** Parses `input` encoded as JSON; returns the request's fields but its text, which is checked to be that JSON. */
function parse(input: unknown, overrides: Partial<Limits> = {}) {
  const json = JSON.stringify(input);
  const { text, ...fields } = parseRequest(json, limits(overrides));
  if (text !== json) throw new Error(`request text ${text} is not the frame ${json}`);
  return fields;
}

/** A non-empty tag of any code points (no half surrogates, so its UTF-8 length is well defined). */
const tagArbitrary = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
/** Tag lists where some tags are likely to repeat. */
const tagListArbitrary = fc.array(fc.oneof(tagArbitrary, fc.constantFrom('a', 'b', 'c')), { maxLength: 6 });

// --- parseRequest: well-formed requests --------------------------------------

test('a request with command, tags and data is returned as sent', (t) => {
  t.deepEqual(parse({ command: 'publish', tags: ['a', 'b'], data: 'hello' }), {
    command: 'publish',
    tags: ['a', 'b'],
    data: 'hello',
  });
});

test('tags keep the order and duplicates the client sent', (t) => {
  t.deepEqual(parse({ command: 'subscribe', tags: ['b', 'a', 'a'] }).tags, ['b', 'a', 'a']);
});

test('a request without tags has no tags and undefined data', (t) => {
  t.deepEqual(parse({ command: 'ping' }), { command: 'ping', tags: [], data: undefined });
});

test('"tags": null is treated as no tags', (t) => {
  t.deepEqual(parse({ command: 'ping', tags: null }).tags, []);
});

test('an empty tags array is accepted as no tags', (t) => {
  t.deepEqual(parse({ command: 'list', tags: [] }).tags, []);
});

test('unknown fields are ignored', (t) => {
  t.deepEqual(parse({ command: 'ping', extra: { nested: true }, error: 'x' }), {
    command: 'ping',
    tags: [],
    data: undefined,
  });
});

test('JSON whitespace around and inside the object is accepted', (t) => {
  const frame = ' \t{ "command" :\r"ping" ,\t"tags" : [ "a" ] }\r ';
  t.deepEqual(parseRequest(frame, limits()), { command: 'ping', tags: ['a'], data: undefined, text: frame });
});

test('an unknown command name parses (refusing it is the dispatcher\'s business)', (t) => {
  t.is(parse({ command: 'no-such-command' }).command, 'no-such-command');
});

const DATA_VALUES: [string, unknown][] = [
  ['a string', 'text'],
  ['an empty string', ''],
  ['a number', 42.5],
  ['zero', 0],
  ['true', true],
  ['false', false],
  ['null', null],
  ['an array', [1, 'two', [3], { four: 4 }]],
  ['an object', { nested: { deeper: ['x'] }, n: 1 }],
];

for (const [label, data] of DATA_VALUES) {
  test(`data that is ${label} is passed through unchanged`, (t) => {
    t.deepEqual(parse({ command: 'publish', tags: ['a'], data }).data, data);
  });
}

test('data of any JSON value is passed through unchanged', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.jsonValue(), (data) => {
        const request = parseRequest(JSON.stringify({ command: 'publish', tags: ['a'], data }), limits());
        // JSON.stringify compares the values the way the wire sees them (-0 is 0 there).
        if (JSON.stringify(request.data) !== JSON.stringify(data)) throw new Error('data changed');
      }),
      { numRuns: 500 },
    ),
  );
});

// --- parseRequest: refusals without a usable command -------------------------

test('a frame of bytes that are not valid UTF-8 is refused as invalid UTF-8, not decoded with replacement characters', (t) => {
  const line = Buffer.concat([Buffer.from('{"command":"publish","tags":["a"],"data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  const error = t.throws(() => parseRequest(line, limits()), { instanceOf: CommandError });
  t.is(error?.command, INVALID_MESSAGE_COMMAND);
  t.is(error?.message, 'invalid UTF-8');
});

test('a frame of valid UTF-8 bytes parses like the same text', (t) => {
  const text = JSON.stringify({ command: 'publish', tags: ['fisk', 'ﬁsh', '🐟'], data: 'blåbær' });
  t.deepEqual(parseRequest(Buffer.from(text), limits()), parseRequest(text, limits()));
});

test('invalid JSON is refused, naming the invalid-message command', (t) => {
  const invalid = ['{', '{"command":"ping"', 'ping', '', '   ', "{'command':'ping'}", '{"command":"ping"}}', '\u0000\u00ff'];
  for (const text of invalid) {
    const error = refused(t, text);
    t.is(error.command, INVALID_MESSAGE_COMMAND, JSON.stringify(text));
    t.regex(error.message, /invalid JSON/);
  }
});

for (const [label, text] of [
  ['a number', '42'],
  ['a string', '"ping"'],
  ['null', 'null'],
  ['true', 'true'],
  ['an array', '[{"command":"ping"}]'],
  ['an empty array', '[]'],
]) {
  test(`a JSON value that is ${label}, not an object, is refused naming the invalid-message command`, (t) => {
    const error = refused(t, text!);
    t.is(error.command, INVALID_MESSAGE_COMMAND);
    t.regex(error.message, /JSON object/);
  });
}

test('a message without "command" is refused naming the invalid-message command', (t) => {
  const error = refused(t, { tags: ['a'], data: 'x' });
  t.is(error.command, INVALID_MESSAGE_COMMAND);
  t.regex(error.message, /missing "command"/);
  t.is(refused(t, {}).command, INVALID_MESSAGE_COMMAND);
});

for (const [label, command] of [
  ['a number', 1],
  ['null', null],
  ['true', true],
  ['an array', ['ping']],
  ['an object', { name: 'ping' }],
] as [string, unknown][]) {
  test(`a "command" that is ${label}, not a string, is refused naming the invalid-message command`, (t) => {
    const error = refused(t, { command, tags: ['a'] });
    t.is(error.command, INVALID_MESSAGE_COMMAND);
    t.regex(error.message, /"command" must be a string/);
  });
}

test('a message with bad tags and no usable command names the invalid-message command', (t) => {
  t.is(refused(t, { command: 7, tags: 'a' }).command, INVALID_MESSAGE_COMMAND);
});

// --- parseRequest: refusals naming the command -------------------------------

for (const [label, tags] of [
  ['a string', 'a,b'],
  ['a number', 3],
  ['an object', { 0: 'a' }],
  ['true', true],
] as [string, unknown][]) {
  test(`"tags" that is ${label}, not an array, is refused naming the command`, (t) => {
    const error = refused(t, { command: 'subscribe', tags });
    t.is(error.command, 'subscribe');
    t.regex(error.message, /"tags" must be an array of strings/);
  });
}

for (const [label, tag] of [
  ['a number', 1],
  ['null', null],
  ['an array', ['a']],
  ['an object', { tag: 'a' }],
  ['a boolean', false],
] as [string, unknown][]) {
  test(`a tag that is ${label}, not a string, is refused naming the command`, (t) => {
    const error = refused(t, { command: 'publish', tags: ['a', tag], data: 'x' });
    t.is(error.command, 'publish');
    t.regex(error.message, /"tags" must be an array of strings/);
  });
}

test('an empty tag is refused naming the command', (t) => {
  const error = refused(t, { command: 'subscribe', tags: ['a', ''] });
  t.is(error.command, 'subscribe');
  t.regex(error.message, /must not be empty/);
});

test('exactly maxTags tags are accepted', (t) => {
  const tags = Array.from({ length: DEFAULT_LIMITS.maxTags }, (_, i) => `t${i}`);
  t.is(parse({ command: 'publish', tags }).tags.length, DEFAULT_LIMITS.maxTags);
  t.deepEqual(parse({ command: 'publish', tags: ['a', 'b', 'c'] }, { maxTags: 3 }).tags, ['a', 'b', 'c']);
});

test('more than maxTags tags are refused naming the command', (t) => {
  const tags = Array.from({ length: DEFAULT_LIMITS.maxTags + 1 }, (_, i) => `t${i}`);
  const error = refused(t, { command: 'publish', tags });
  t.is(error.command, 'publish');
  t.regex(error.message, new RegExp(`too many tags: ${DEFAULT_LIMITS.maxTags + 1} \\(limit ${DEFAULT_LIMITS.maxTags}\\)`));
  t.is(refused(t, { command: 'subscribe', tags: ['a', 'b', 'c', 'd'] }, { maxTags: 3 }).command, 'subscribe');
});

test('duplicate tags count towards maxTags', (t) => {
  t.is(refused(t, { command: 'subscribe', tags: ['a', 'a', 'a'] }, { maxTags: 2 }).command, 'subscribe');
});

test('a tag of exactly maxTagBytes bytes is accepted', (t) => {
  const tag = 'x'.repeat(DEFAULT_LIMITS.maxTagBytes);
  t.deepEqual(parse({ command: 'subscribe', tags: [tag] }).tags, [tag]);
});

test('a tag one byte over maxTagBytes is refused naming the command', (t) => {
  const error = refused(t, { command: 'subscribe', tags: ['ok', 'x'.repeat(DEFAULT_LIMITS.maxTagBytes + 1)] });
  t.is(error.command, 'subscribe');
  t.regex(error.message, new RegExp(`tag too long: ${DEFAULT_LIMITS.maxTagBytes + 1} bytes`));
});

test('tag length is measured in UTF-8 bytes, not characters', (t) => {
  const max = DEFAULT_LIMITS.maxTagBytes; // 256
  // Under the limit in characters, over it in bytes.
  for (const tag of ['é'.repeat(max / 2 + 1), '€'.repeat(Math.floor(max / 3) + 1), '😀'.repeat(max / 4 + 1)]) {
    t.true(tag.length <= max);
    t.true(Buffer.byteLength(tag) > max);
    const error = refused(t, { command: 'publish', tags: [tag] });
    t.is(error.command, 'publish');
    t.regex(error.message, new RegExp(`tag too long: ${Buffer.byteLength(tag)} bytes \\(limit ${max}\\)`));
  }
  // Exactly at the limit in bytes.
  for (const tag of ['é'.repeat(max / 2), '😀'.repeat(max / 4), `${'€'.repeat(85)}x`]) {
    t.is(Buffer.byteLength(tag), max);
    t.deepEqual(parse({ command: 'publish', tags: [tag] }).tags, [tag]);
  }
});

test('tag byte length is exact around small limits', (t) => {
  t.deepEqual(parse({ command: 'subscribe', tags: ['€€'] }, { maxTagBytes: 6 }).tags, ['€€']);
  t.is(refused(t, { command: 'subscribe', tags: ['€€'] }, { maxTagBytes: 5 }).command, 'subscribe');
  t.deepEqual(parse({ command: 'subscribe', tags: ['éé'] }, { maxTagBytes: 4 }).tags, ['éé']);
  t.is(refused(t, { command: 'subscribe', tags: ['ééé'] }, { maxTagBytes: 5 }).command, 'subscribe');
});

test('any tag is accepted exactly when its UTF-8 length is within maxTagBytes', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(tagArbitrary, fc.integer({ min: 1, max: 40 }), (tag, max) => {
        const text = JSON.stringify({ command: 'subscribe', tags: [tag] });
        let accepted: boolean;
        try {
          accepted = parseRequest(text, limits({ maxTagBytes: max })).tags[0] === tag;
        } catch (err) {
          if (!(err instanceof CommandError) || err.command !== 'subscribe') throw err;
          accepted = false;
        }
        if (accepted !== Buffer.byteLength(tag) <= max) {
          throw new Error(`${JSON.stringify(tag)} (${Buffer.byteLength(tag)} bytes), limit ${max}: accepted=${accepted}`);
        }
      }),
      { numRuns: 1000 },
    ),
  );
});

test('any input either parses or throws a CommandError, never anything else', (t) => {
  const input = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.jsonValue().map((value) => JSON.stringify(value)),
    fc
      .record({ command: fc.jsonValue(), tags: fc.jsonValue(), data: fc.jsonValue() }, { requiredKeys: [] })
      .map((value) => JSON.stringify(value)),
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(input, (text) => {
        try {
          const request = parseRequest(text, limits({ maxTags: 4, maxTagBytes: 8 }));
          if (typeof request.command !== 'string' || !Array.isArray(request.tags)) throw new Error('bad request shape');
        } catch (err) {
          if (!(err instanceof CommandError)) throw err;
        }
      }),
      { numRuns: 1000 },
    ),
  );
});

test('a protocol refusal is a CommandError carrying the command its reply names', (t) => {
  const error = new CommandError('a tag must not be empty', 'invalid', { command: 'subscribe' });
  t.true(error instanceof Error);
  t.is(error.name, 'CommandError');
  t.is(error.command, 'subscribe');
  t.is(error.message, 'a tag must not be empty');
});

// --- Frame --------------------------------------------------------------------

test('Frame.of encodes a message as its JSON text', (t) => {
  const message = { command: 'publish', tags: ['a', 'b'], data: { any: ['json', 1] } };
  t.is(Frame.of(message).json, JSON.stringify(message));
  t.deepEqual(JSON.parse(Frame.of(message).json), message);
});

test('Frame.line is the JSON text plus \\n, in UTF-8', (t) => {
  const frame = Frame.of({ command: 'publish', tags: ['é'], data: '€ 😀' });
  t.true(Buffer.isBuffer(frame.line));
  t.is(frame.line.toString('utf8'), `${frame.json}\n`);
  t.is(frame.line.length, Buffer.byteLength(frame.json) + 1);
  t.is(frame.line.at(-1), 0x0a);
});

test('Frame.line is the same Buffer on repeated access', (t) => {
  const frame = new Frame('{"command":"ping","tags":[],"data":"pong"}');
  const first = frame.line;
  t.is(frame.line, first);
  t.is(frame.line, first);
});

test('a Frame built from JSON text keeps that text exactly', (t) => {
  const json = '{"command":"ping", "data":"pong"}';
  t.is(new Frame(json).json, json);
  t.is(new Frame(json).line.toString(), `${json}\n`);
});

// --- tags.ts ------------------------------------------------------------------

test('canonicalTags removes duplicates and sorts: ["b","a","a"] is ["a","b"]', (t) => {
  t.deepEqual(canonicalTags(['b', 'a', 'a']), ['a', 'b']);
  t.deepEqual(canonicalTags([]), []);
  t.deepEqual(canonicalTags(['only']), ['only']);
});

test('canonicalTags leaves its input untouched', (t) => {
  const input = ['c', 'a', 'c'];
  canonicalTags(input);
  t.deepEqual(input, ['c', 'a', 'c']);
});

test('canonicalTags sorts by UTF-16 code unit, the same order compareTagSets uses', (t) => {
  t.deepEqual(canonicalTags(['b', 'a', 'B', 'é', '10', '9', 'Z']), ['10', '9', 'B', 'Z', 'a', 'b', 'é']);
});

test('canonicalTags is the same for every order and repetition of the same tags', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(tagListArbitrary, fc.array(fc.nat()), (tags, picks) => {
        // A reordering with extra copies of some tags.
        const copies = tags.length === 0 ? [] : picks.map((pick) => tags[pick % tags.length]!);
        const shuffled = [...tags].reverse().concat(copies);
        const canonical = canonicalTags(tags);
        if (tagSetKey(canonicalTags(shuffled)) !== tagSetKey(canonical)) throw new Error('order or repetition mattered');
        if (tagSetKey(canonicalTags(canonical)) !== tagSetKey(canonical)) throw new Error('not idempotent');
        if (new Set(canonical).size !== canonical.length) throw new Error('duplicates left');
        if (canonical.some((tag, i) => i > 0 && !(canonical[i - 1]! < tag))) throw new Error('not sorted');
      }),
      { numRuns: 500 },
    ),
  );
});

test('tagSetKey tells apart sets that glued-together tags would confuse', (t) => {
  t.not(tagSetKey(['a,b']), tagSetKey(['a', 'b']));
  t.not(tagSetKey(['ab']), tagSetKey(['a', 'b']));
  t.not(tagSetKey(['a b']), tagSetKey(['a', 'b']));
  t.not(tagSetKey(['a"', 'b']), tagSetKey(['a', '"b']));
  t.not(tagSetKey([]), tagSetKey(['']));
  t.is(tagSetKey(['a', 'b']), tagSetKey(canonicalTags(['b', 'a'])));
});

test('tagSetKey is equal exactly for equal canonical sets', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(tagListArbitrary, tagListArbitrary, (a, b) => {
        const ca = canonicalTags(a);
        const cb = canonicalTags(b);
        const same = ca.length === cb.length && ca.every((tag, i) => tag === cb[i]);
        if ((tagSetKey(ca) === tagSetKey(cb)) !== same) throw new Error('key equality differs from set equality');
      }),
      { numRuns: 500 },
    ),
  );
});

test('compareTagSets orders tag by tag, a set before its extensions', (t) => {
  t.true(compareTagSets(['a'], ['b']) < 0);
  t.true(compareTagSets(['b'], ['a']) > 0);
  t.true(compareTagSets(['a'], ['a', 'b']) < 0);
  t.true(compareTagSets(['a', 'b'], ['a']) > 0);
  t.true(compareTagSets(['a', 'c'], ['b']) < 0);
  t.true(compareTagSets([], ['a']) < 0);
  t.is(compareTagSets(['a', 'b'], ['a', 'b']), 0);
  t.is(compareTagSets([], []), 0);
});

test('compareTagSets sorts a list of subscriptions as the list command shows them', (t) => {
  const subscriptions = [['c'], ['a', 'b'], ['a'], ['b', 'c'], ['a', 'b', 'c'], ['B']];
  t.deepEqual([...subscriptions].sort(compareTagSets), [['B'], ['a'], ['a', 'b'], ['a', 'b', 'c'], ['b', 'c'], ['c']]);
});

test('compareTagSets is a consistent total order on canonical sets', (t) => {
  const canonicalArbitrary = tagListArbitrary.map(canonicalTags);
  t.notThrows(() =>
    fc.assert(
      fc.property(canonicalArbitrary, canonicalArbitrary, canonicalArbitrary, (a, b, c) => {
        const sign = (n: number) => Math.sign(n);
        if (sign(compareTagSets(a, b)) !== -sign(compareTagSets(b, a))) throw new Error('not antisymmetric');
        if ((compareTagSets(a, b) === 0) !== (tagSetKey(a) === tagSetKey(b))) throw new Error('0 for different sets');
        if (compareTagSets(a, b) <= 0 && compareTagSets(b, c) <= 0 && compareTagSets(a, c) > 0) {
          throw new Error('not transitive');
        }
      }),
      { numRuns: 1000 },
    ),
  );
});

test('Frame.framed builds each framing once, however many connections ask, and keeps framings apart', (t) => {
  const frame = Frame.publish(['a'], '"x"');
  const built: string[] = [];
  const upper = (f: Frame) => (built.push('upper'), Buffer.from(f.json.toUpperCase()));
  const lines = (f: Frame) => (built.push('lines'), Buffer.from(`${f.json}\r\n`));
  const first = frame.framed(upper);
  t.is(frame.framed(upper), first, 'the same bytes, not a copy');
  t.is(frame.framed(lines).toString(), `${frame.json}\r\n`);
  t.is(frame.framed(lines), frame.framed(lines));
  t.is(frame.framed(upper), first);
  t.is(first.toString(), frame.json.toUpperCase());
  t.deepEqual(built, ['upper', 'lines']);
});
