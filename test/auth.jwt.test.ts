/**
 * The jwt:// authenticator with an HS256 secret, over real sockets: a
 * token's tags on every transport, every way a token is refused, the admin
 * claim, audience and issuer, the admin commands, and start-up refusals.
 * Keys: test/auth.jwt-keys.test.ts; expiry: test/auth.jwt-expiry.test.ts.
 */
import test from 'ava';
import { CompactSign } from 'jose';
import { NO_TOKEN_STORE } from '../plugins/authenticators/jwt.ts';
import {
  ADMIN,
  assertNotLogged,
  attempt,
  ATTEMPTS,
  b64,
  HS256_KEY,
  hs256,
  jwtScene,
  mint,
  now,
  refusals,
  SECRET,
  SECRET_ENV,
} from './helpers/jwt.ts';
import { LineClient, startTestServer, withoutId } from './helpers/server.ts';
import { postPublish } from './helpers/web.ts';

const HS256_URI = `jwt://?secret-env=${SECRET_ENV}`;

test('a token may subscribe and publish within its tags, and not outside them, on every transport', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const token = await hs256({ tags: ['a', 'b'] });
  for (const how of ATTEMPTS) {
    t.is(await attempt(t, scene, how, token, ['a']), 'ok', how);
    t.is(await attempt(t, scene, how, token, ['b', 'a']), 'ok', how);
    t.is(await attempt(t, scene, how, token, ['a', 'c']), 'forbidden', how);
  }
  assertNotLogged(t, scene.logs, [SECRET, token]);
});

test('what a token publishes reaches the subscribers its tags let in', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const subscriber = await LineClient.connect(t, scene.tcp);
  t.is((await subscriber.request({ command: 'auth', data: await hs256({ tags: ['news'] }) })).data, 'success');
  t.is((await subscriber.request({ command: 'subscribe', tags: ['news'] })).data, 'success');
  const reply = await postPublish(scene.http, { tags: ['news'], data: 'hello' }, { 'x-auth-token': await hs256({ tags: ['news', 'sports'] }) });
  t.is(reply.status, 204);
  t.deepEqual(withoutId(await subscriber.next()), { command: 'publish', tags: ['news'], data: 'hello' });
});

/** Tokens refused as a wrong token is, each with the reason the log gives. */
async function badTokens(): Promise<Array<{ name: string; token: string; reason: RegExp }>> {
  const tags = ['a'];
  const exp = now() + 3600;
  const otherKey = new TextEncoder().encode('another-secret-of-more-than-32-bytes-long');
  const signedPayload = (payload: string) => new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'HS256' }).sign(HS256_KEY);
  const good = await hs256({ tags });
  const [header, payload, signature] = good.split('.');
  return [
    { name: 'expired', token: await hs256({ tags, exp: now() - 5 }), reason: /ERR_JWT_EXPIRED/ },
    { name: 'not yet valid (nbf)', token: await hs256({ tags, nbf: now() + 600 }), reason: /"nbf"/ },
    { name: 'without exp', token: await mint(HS256_KEY, 'HS256', { tags }), reason: /missing required "exp"/ },
    { name: 'exp not a number', token: await mint(HS256_KEY, 'HS256', { tags, exp: 'later' as unknown as number }), reason: /"exp" claim must be a number/ },
    { name: 'without tags', token: await hs256({}), reason: /"tags" claim/ },
    { name: 'tags not a list', token: await hs256({ tags: 'a' }), reason: /"tags" claim/ },
    { name: 'tags not strings', token: await hs256({ tags: ['a', 7] }), reason: /"tags" claim/ },
    { name: 'signed with another secret', token: await mint(otherKey, 'HS256', { tags, exp }), reason: /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/ },
    { name: 'signature of another token', token: `${header}.${b64({ tags: ['a', 'b'], exp })}.${signature}`, reason: /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/ },
    { name: 'alg none, empty signature', token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tags, exp })}.`, reason: /ERR_JOSE_ALG_NOT_ALLOWED/ },
    { name: 'HS384, not the configured HS256', token: await mint(HS256_KEY, 'HS384', { tags, exp }), reason: /ERR_JOSE_ALG_NOT_ALLOWED/ },
    { name: 'over 8 KiB', token: await hs256({ tags, padding: 'x'.repeat(8 * 1024) }), reason: /token over 8192 bytes/ },
    { name: 'malformed base64 in the header', token: `*${header}.${payload}.${signature}`, reason: /ERR_JWS_INVALID/ },
    { name: 'malformed base64 in the signature', token: `${header}.${payload}.${signature}*`, reason: /ERR_JWS_INVALID/ },
    // The signature covers the payload's text, so a payload that is not base64 fails there, before any decoding.
    { name: 'malformed base64 in the payload', token: `${header}.*${payload}.${signature}`, reason: /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/ },
    { name: 'header not JSON', token: `${b64('{"alg":')}.${payload}.${signature}`, reason: /ERR_JWS_INVALID/ },
    { name: 'payload not JSON, validly signed', token: await signedPayload('{"tags":'), reason: /ERR_JWT_INVALID/ },
    { name: 'payload a JSON array, validly signed', token: await signedPayload('["a"]'), reason: /ERR_JWT_INVALID/ },
    { name: 'not a JWT at all', token: 'just-a-guess', reason: /ERR_JWS_INVALID/ },
  ];
}

test('every bad token is refused like a wrong token on every transport, its reason logged at DEBUG, never the token', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const bad = await badTokens();
  for (const { name, token, reason } of bad) {
    for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, token, ['a']), 'invalid token', `${name}, ${how}`);
    const logged = refusals(scene.logs);
    t.is(logged.length, ATTEMPTS.length, name);
    t.true(logged.every((line) => reason.test(line)), `${name}: ${logged[0]}`);
    scene.logs.length = 0;
  }
  assertNotLogged(t, scene.logs, [SECRET, ...bad.map(({ token }) => token)]);
});

test('without admin=true, an admin claim grants only the token\'s tags', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const token = await hs256({ tags: ['a'], admin: true });
  for (const how of ATTEMPTS) {
    t.is(await attempt(t, scene, how, token, ['a']), 'ok', how);
    t.is(await attempt(t, scene, how, token, ['b']), 'forbidden', how);
  }
  const client = await LineClient.connect(t, scene.tcp);
  await client.request({ command: 'auth', data: token });
  t.deepEqual(await client.request({ command: 'who' }), { command: 'who', error: '"who" needs the admin token' });
  t.true(scene.logs.some((line) => String(line.msg).startsWith('"admin" claim ignored')));
});

test('with admin=true, a token claiming admin may do everything; any other value of the claim grants nothing more', async (t) => {
  const scene = await jwtScene(t, `${HS256_URI}&admin=true`);
  const admin = await hs256({ tags: [], admin: true });
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, admin, ['any', 'tags']), 'ok', how);
  const client = await LineClient.connect(t, scene.tcp);
  await client.request({ command: 'auth', data: admin });
  t.is((await client.request({ command: 'who' })).command, 'who');
  t.falsy((await client.request({ command: 'who' })).error);

  const pretender = await hs256({ tags: ['a'], admin: 'true' });
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, pretender, ['b']), 'forbidden', how);
});

test('with aud and iss configured, a token must carry both, equal to them', async (t) => {
  const scene = await jwtScene(t, `${HS256_URI}&aud=mist&iss=${encodeURIComponent('https://backend.example')}`);
  const claims = { tags: ['a'], aud: 'mist', iss: 'https://backend.example' };
  const good = await hs256(claims);
  const wrong = [
    await hs256({ ...claims, aud: 'another-service' }),
    await hs256({ ...claims, aud: undefined }),
    await hs256({ ...claims, iss: 'https://elsewhere.example' }),
    await hs256({ ...claims, iss: undefined }),
  ];
  for (const how of ATTEMPTS) {
    t.is(await attempt(t, scene, how, good, ['a']), 'ok', how);
    for (const token of wrong) t.is(await attempt(t, scene, how, token, ['a']), 'invalid token', how);
  }
  t.true(refusals(scene.logs).every((reason) => /"aud"|"iss"/.test(reason)));
});

test('the admin token works beside signed tokens; commands that change tokens say there is no store; tags decodes a valid token', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  const admin = await LineClient.connect(t, scene.tcp);
  t.deepEqual(await admin.request({ command: 'auth', data: ADMIN }), { command: 'auth', data: 'success' });
  const token = await hs256({ tags: ['b', 'a', 'b'] });
  for (const command of ['register', 'unregister', 'set', 'unset']) {
    t.deepEqual(await admin.request({ command, data: token, tags: ['a'] }), { command, error: NO_TOKEN_STORE }, command);
  }
  t.deepEqual(await admin.request({ command: 'tags', data: token }), { command: 'tags', tags: ['a', 'b'] });
  t.deepEqual(await admin.request({ command: 'tags', data: await hs256({ tags: ['a'], exp: now() - 5 }) }), { command: 'tags', error: 'no such token' });
  // The token's connections were not disturbed by the refused changes.
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, token, ['a', 'b']), 'ok', how);
});

test('the secret is read from the environment, and never appears in the log; the URI logged names only the variable', async (t) => {
  const scene = await jwtScene(t, HS256_URI);
  await attempt(t, scene, 'tcp subscribe', await hs256({ tags: ['a'] }), ['a']);
  const started = scene.logs.find((line) => line.msg === 'authentication required');
  t.is(started?.authenticator, HS256_URI);
  assertNotLogged(t, scene.logs, [SECRET]);
});

test('start-up is refused, saying why, for an unset, empty or short secret and for a URI that names no key, two keys or unknown parameters', async (t) => {
  delete process.env.MIST_TEST_JWT_UNSET;
  process.env.MIST_TEST_JWT_EMPTY = '';
  process.env.MIST_TEST_JWT_SHORT = 'short';
  const refused: Array<[string, RegExp]> = [
    ['jwt://?secret-env=MIST_TEST_JWT_UNSET', /environment variable MIST_TEST_JWT_UNSET is unset or empty/],
    ['jwt://?secret-env=MIST_TEST_JWT_EMPTY', /environment variable MIST_TEST_JWT_EMPTY is unset or empty/],
    ['jwt://?secret-env=MIST_TEST_JWT_SHORT', /secret in MIST_TEST_JWT_SHORT is too short: HS256 needs at least 32 bytes/],
    ['jwt://', /give exactly one key/],
    [`${HS256_URI}&jwks=keys.json`, /give exactly one key/],
    [`${HS256_URI}&audience=mist`, /unknown parameter audience/],
    [`${HS256_URI}&admin=yes`, /\?admin= must be true or false/],
  ];
  for (const [uri, message] of refused) {
    const error = await t.throwsAsync(startTestServer(t, { authenticator: uri, token: ADMIN }));
    t.regex(error.message, /cannot open authenticator jwt:/, uri);
    t.regex(error.message, message, uri);
  }
});
