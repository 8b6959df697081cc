/**
 * The jwt:// authenticator's public keys, over real sockets: a PEM file of
 * each supported type, algorithm confusion, unsupported keys, and a JWKS
 * file rotated while the server runs. Keys are generated in the test.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { exportJWK, exportSPKI, generateKeyPair, importPKCS8, type CryptoKey } from 'jose';
import { ADMIN, assertNotLogged, attempt, ATTEMPTS, jwtScene, mint, now, refusals, type JwtScene } from './helpers/jwt.ts';
import { tempFolder } from './helpers/files.ts';
import { eventually, startTestServer } from './helpers/server.ts';
import { certificateFiles } from './helpers/web.ts';

interface KeyPair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

async function keyPair(alg: string): Promise<KeyPair> {
  return generateKeyPair(alg, { extractable: true });
}

/** A server verifying with `key`'s public half, written as a PEM file. */
async function pemScene(t: ExecutionContext, key: KeyPair): Promise<JwtScene> {
  const dir = await tempFolder(t, { 'key.pem': await exportSPKI(key.publicKey) });
  return jwtScene(t, `jwt://?public-key=${encodeURIComponent(join(dir, 'key.pem'))}`);
}

for (const alg of ['RS256', 'ES256', 'EdDSA']) {
  test(`public-key, ${alg}: the key's tokens pass on every transport; another key's, or another algorithm's, are refused`, async (t) => {
    const key = await keyPair(alg);
    const scene = await pemScene(t, key);
    const claims = { tags: ['a'], exp: now() + 600 };
    const good = await mint(key.privateKey, alg, claims);
    const otherKey = await mint((await keyPair(alg)).privateKey, alg, claims);
    const otherAlg = alg === 'ES256' ? 'RS256' : 'ES256';
    const otherAlgorithm = await mint((await keyPair(otherAlg)).privateKey, otherAlg, claims);
    for (const how of ATTEMPTS) {
      t.is(await attempt(t, scene, how, good, ['a']), 'ok', how);
      t.is(await attempt(t, scene, how, good, ['b']), 'forbidden', how);
      t.is(await attempt(t, scene, how, otherKey, ['a']), 'invalid token', how);
      t.is(await attempt(t, scene, how, otherAlgorithm, ['a']), 'invalid token', how);
    }
    const reasons = refusals(scene.logs);
    t.is(reasons.filter((reason) => reason.startsWith('ERR_JWS_SIGNATURE_VERIFICATION_FAILED')).length, ATTEMPTS.length);
    t.is(reasons.filter((reason) => reason.startsWith('ERR_JOSE_ALG_NOT_ALLOWED')).length, ATTEMPTS.length);
  });
}

test('public-key: a certificate gives its public key (here EC P-256, so ES256)', async (t) => {
  const { cert, key } = await certificateFiles(t);
  const scene = await jwtScene(t, `jwt://?public-key=${encodeURIComponent(cert)}`);
  const token = await mint(await importPKCS8(await readFile(key, 'utf8'), 'ES256'), 'ES256', { tags: ['a'], exp: now() + 600 });
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, token, ['a']), 'ok', how);
});

test('public-key: an HS256 token whose secret is the RSA public key (algorithm confusion) is refused', async (t) => {
  const key = await keyPair('RS256');
  const pem = await exportSPKI(key.publicKey);
  const scene = await pemScene(t, key);
  const forged = await mint(new TextEncoder().encode(pem), 'HS256', { tags: ['a'], exp: now() + 600 });
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, forged, ['a']), 'invalid token', how);
  t.true(refusals(scene.logs).every((reason) => reason.startsWith('ERR_JOSE_ALG_NOT_ALLOWED')));
});

test('public-key: a key of an unsupported type or curve, or a file that is not a key, stops start-up naming the file', async (t) => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const dir = await tempFolder(t, { 'p384.pem': p384, 'garbage.pem': 'not a key' });
  const cases: Array<[string, RegExp]> = [
    ['p384.pem', /p384\.pem: unsupported key \(ec secp384r1\): use RSA \(RS256\), EC P-256 \(ES256\) or Ed25519 \(EdDSA\)/],
    ['garbage.pem', /cannot read a PEM public key from .*garbage\.pem/],
    ['missing.pem', /cannot read a PEM public key from .*missing\.pem/],
  ];
  for (const [file, message] of cases) {
    const error = await t.throwsAsync(startTestServer(t, { authenticator: `jwt://?public-key=${join(dir, file)}`, token: ADMIN }));
    t.regex(error.message, message, file);
  }
});

/** A JWKS file of the public halves of `keys`, each with its `kid`. */
async function jwks(keys: Record<string, KeyPair>): Promise<string> {
  const set = await Promise.all(Object.entries(keys).map(async ([kid, key]) => ({ ...(await exportJWK(key.publicKey)), kid })));
  return JSON.stringify({ keys: set });
}

/** Replaces `file` as deployment tools do: write another file, rename it over. */
async function replace(file: string, content: string): Promise<void> {
  await writeFile(`${file}.new`, content);
  await rename(`${file}.new`, file);
}

test('jwks: keys rotate without a restart — a new key is taken up, a removed one refused, a broken rewrite keeps the last good set', async (t) => {
  const old = await keyPair('ES256');
  const next = await keyPair('EdDSA');
  const dir = await tempFolder(t, { 'keys.json': await jwks({ old }) });
  const file = join(dir, 'keys.json');
  const scene = await jwtScene(t, `jwt://?jwks=${encodeURIComponent(file)}`);
  const claims = { tags: ['a'], exp: now() + 600 };
  const byOld = await mint(old.privateKey, 'ES256', claims, { kid: 'old' });
  const byNext = await mint(next.privateKey, 'EdDSA', claims, { kid: 'next' });
  const accepted = async (token: string) => (await attempt(t, scene, 'http publish', token, ['a'])) === 'ok';

  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, byOld, ['a']), 'ok', how);
  t.false(await accepted(byNext));

  // Both keys during the rotation, the file rewritten in place.
  scene.logs.length = 0;
  await writeFile(file, await jwks({ old, next }));
  await eventually(() => scene.logs.some((line) => line.msg === 'JWKS file reloaded'), 10_000, 'a reload');
  t.true(await accepted(byNext));
  t.true(await accepted(byOld));

  // A rewrite that is not a key set changes nothing.
  scene.logs.length = 0;
  await replace(file, '{"keys": [');
  await eventually(() => scene.logs.some((line) => line.msg === 'JWKS file not reloaded: keeping the last good key set'), 10_000, 'a failed reload');
  t.true(await accepted(byNext));
  t.true(await accepted(byOld));

  // The old key retired, the file replaced by a rename.
  scene.logs.length = 0;
  await replace(file, await jwks({ next }));
  await eventually(() => scene.logs.some((line) => line.msg === 'JWKS file reloaded'), 10_000, 'the second reload');
  for (const how of ATTEMPTS) {
    t.is(await attempt(t, scene, how, byNext, ['a']), 'ok', how);
    t.is(await attempt(t, scene, how, byOld, ['a']), 'invalid token', how);
  }
  t.true(refusals(scene.logs).every((reason) => reason.startsWith('ERR_JWKS_NO_MATCHING_KEY')));
  assertNotLogged(t, scene.logs, [byOld, byNext]);
});

test('jwks: an HS256 token is refused, whatever the set holds', async (t) => {
  const key = await keyPair('RS256');
  const dir = await tempFolder(t, { 'keys.json': await jwks({ key }) });
  const scene = await jwtScene(t, `jwt://?jwks=${encodeURIComponent(join(dir, 'keys.json'))}`);
  const forged = await mint(new TextEncoder().encode(await jwks({ key })), 'HS256', { tags: ['a'], exp: now() + 600 }, { kid: 'key' });
  for (const how of ATTEMPTS) t.is(await attempt(t, scene, how, forged, ['a']), 'invalid token', how);
});

test('jwks: a missing or malformed file stops start-up naming it', async (t) => {
  const dir = await tempFolder(t, { 'broken.json': '{"keys":', 'wrong.json': '{"keys": "none"}' });
  const cases: Array<[string, RegExp]> = [
    ['missing.json', /cannot read JWKS file .*missing\.json/],
    ['broken.json', /JWKS file .*broken\.json is not a key set: it is not valid JSON/],
    ['wrong.json', /JWKS file .*wrong\.json is not a key set/],
  ];
  for (const [file, message] of cases) {
    const error = await t.throwsAsync(startTestServer(t, { authenticator: `jwt://?jwks=${join(dir, file)}`, token: ADMIN }));
    t.regex(error.message, message, file);
  }
});
