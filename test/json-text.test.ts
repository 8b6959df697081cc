import test from 'ava';
import fc from 'fast-check';
import { memberText } from '../core/json-text.ts';
import { DEFAULT_LIMITS } from '../host/defaults.ts';
import { dataJson, parseRequest } from '../core/protocol.ts';

test('memberText returns a member value exactly as written, numbers keeping every digit', (t) => {
  t.is(memberText('{"data":12345678901234567890}', 'data'), '12345678901234567890');
  t.is(memberText('{"data":1e400}', 'data'), '1e400');
  t.is(memberText('{"data":-0.000000000000000000001}', 'data'), '-0.000000000000000000001');
  t.is(memberText('{"command":"publish","data":{"id":9007199254740993}}', 'data'), '{"id":9007199254740993}');
});

test('memberText keeps duplicate keys inside the value and, like JSON.parse, takes the last duplicate member', (t) => {
  t.is(memberText('{"data":{"a":1,"a":2}}', 'data'), '{"a":1,"a":2}');
  t.is(memberText('{"data":"first","tags":[],"data":"last"}', 'data'), '"last"');
});

test('memberText finds the member wherever it stands, and only at the top level', (t) => {
  t.is(memberText('{"data":1,"command":"x"}', 'data'), '1');
  t.is(memberText('{"command":"x","data":[1,2],"tags":["a"]}', 'data'), '[1,2]');
  t.is(memberText('{"command":"x","tags":["data"],"nested":{"data":5}}', 'data'), undefined);
  t.is(memberText('{}', 'data'), undefined);
});

test('memberText decodes escaped member names', (t) => {
  t.is(memberText('{"d\\u0061ta":true}', 'data'), 'true');
});

test('memberText skips strings holding braces, brackets, quotes and backslashes', (t) => {
  const json = '{"tags":["}]\\"{["],"data":{"s":"}\\\\","t":["]","\\"}"]},"command":"publish"}';
  t.is(memberText(json, 'data'), '{"s":"}\\\\","t":["]","\\"}"]}');
  t.deepEqual(JSON.parse(memberText(json, 'data')!), JSON.parse(json).data);
});

test('memberText drops whitespace outside strings and keeps it inside them', (t) => {
  t.is(memberText('{ "data" : { "a" :\t[ 1 ,\r\n 2 ] , "b" : " x  y " } }', 'data'), '{"a":[1,2],"b":" x  y "}');
});

test('memberText of any JSON value, however the object is laid out, is that value compactly encoded', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.constantFrom(undefined, 2, '\t'), (data, other, indent) => {
        const json = JSON.stringify({ before: other, data, after: other }, null, indent);
        const text = memberText(json, 'data');
        if (text !== JSON.stringify(data)) throw new Error(`${json} gave ${text}`);
      }),
      { numRuns: 1000 },
    ),
  );
});

test('a deeply nested data value is read without recursion', (t) => {
  const depth = 100_000;
  const data = '['.repeat(depth) + ']'.repeat(depth);
  t.is(memberText(`{"command":"publish","data":${data}}`, 'data'), data);
});

test('dataJson gives strings, booleans and null re-encoded, numbers and containers as written, nothing when absent', (t) => {
  const json = (frame: string) => dataJson(parseRequest(frame, DEFAULT_LIMITS));
  t.is(json('{"command":"publish","data":"caf\\u00e9"}'), '"café"');
  t.is(json('{"command":"publish","data":false}'), 'false');
  t.is(json('{"command":"publish","data":null}'), 'null');
  t.is(json('{"command":"publish","data":12345678901234567890}'), '12345678901234567890');
  t.is(json('{"command":"publish","data": { "big" : 1e400 } }'), '{"big":1e400}');
  t.is(json('{"command":"publish"}'), undefined);
});
