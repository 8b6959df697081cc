/**
 * The jwt:// authenticator (jwt.authenticator.ts registers it and says what
 * it takes): checks each token's signature and claims with jose, and grants
 * its `tags` until its `exp`.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { type Authenticator, CommandError, type Grant, type Logger } from '../../host/index.ts';
import { KeySetFile } from './jwks-file.ts';

/** The answer to every admin command that would change a token. */
export const NO_TOKEN_STORE = 'the jwt authenticator has no token store: tokens are signed by your backend';

/** Longer tokens are refused unread: parsing and verifying cost grows with the size, and real ones are far smaller. */
const MAX_TOKEN_BYTES = 8 * 1024;

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash. */
const MIN_SECRET_BYTES = 32;

/** The asymmetric algorithms a JWKS may use. */
const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

const PARAMETERS = new Set(['secret-env', 'public-key', 'jwks', 'aud', 'iss', 'admin']);

type Key = webcrypto.CryptoKey | JWTVerifyGetKey;

export class JwtAuthenticator implements Authenticator {
  private constructor(
    private readonly key: Key,
    private readonly options: JWTVerifyOptions,
    /** Whether a token's `"admin": true` makes it the admin. */
    private readonly admin: boolean,
    private readonly logger: Logger,
    private readonly keySet?: KeySetFile,
  ) {}

  /** Reads the key the URI names; fails naming what is missing or wrong. */
  static async open(url: URL, logger: Logger): Promise<JwtAuthenticator> {
    const params = url.searchParams;
    const unknown = [...params.keys()].filter((name) => !PARAMETERS.has(name));
    if (unknown.length > 0) throw new Error(`unknown parameter ${unknown.join(', ')} (known: ${[...PARAMETERS].join(', ')})`);
    const sources = ['secret-env', 'public-key', 'jwks'].filter((name) => params.has(name));
    if (sources.length !== 1) throw new Error('give exactly one key: jwt://?secret-env=NAME, jwt://?public-key=FILE or jwt://?jwks=FILE');
    const admin = params.get('admin') ?? 'false';
    if (admin !== 'true' && admin !== 'false') throw new Error(`?admin= must be true or false, not "${admin}"`);

    const options: JWTVerifyOptions = { requiredClaims: ['exp'], audience: params.get('aud') ?? undefined, issuer: params.get('iss') ?? undefined };
    let key: Key;
    let keySet: KeySetFile | undefined;
    if (params.has('secret-env')) {
      key = await secretKey(params.get('secret-env')!);
      options.algorithms = ['HS256'];
    } else if (params.has('public-key')) {
      ({ key, algorithms: options.algorithms } = await publicKey(resolve(params.get('public-key')!)));
    } else {
      keySet = await KeySetFile.open(resolve(params.get('jwks')!), logger);
      key = keySet.getKey;
      options.algorithms = JWKS_ALGORITHMS;
    }
    return new JwtAuthenticator(key, options, admin === 'true', logger, keySet);
  }

  /** What a valid token grants; undefined for any other. */
  async tagsFor(token: string): Promise<Grant | undefined> {
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return this.refuse(`token over ${MAX_TOKEN_BYTES} bytes`);
    try {
      const { payload } = await jwtVerify(token, this.key, this.options);
      return this.grantOf(payload);
    } catch (err) {
      // jose's errors say what was wrong, never with the token's content; anything else is a fault, not a refusal.
      if (!(err instanceof errors.JOSEError)) throw err;
      return this.refuse(`${err.code}: ${err.message}`);
    }
  }

  async addToken(): Promise<void> {
    throw new CommandError(NO_TOKEN_STORE);
  }

  async removeToken(): Promise<void> {
    throw new CommandError(NO_TOKEN_STORE);
  }

  async addTags(): Promise<void> {
    throw new CommandError(NO_TOKEN_STORE);
  }

  async removeTags(): Promise<void> {
    throw new CommandError(NO_TOKEN_STORE);
  }

  async listTokens(): Promise<never> {
    throw new CommandError(NO_TOKEN_STORE);
  }

  async close(): Promise<void> {
    this.keySet?.close();
  }

  /** The grant of a token whose signature and standard claims jose checked; throws for missing or invalid `tags`. */
  private grantOf(payload: JWTPayload): Grant {
    const { tags } = payload;
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) {
      throw new errors.JWTClaimValidationFailed('"tags" claim must be an array of strings', payload, 'tags', 'invalid');
    }
    // `exp` is a required claim: jose refused a token without a numeric one.
    const grant: Grant = { tags: [...new Set(tags)].sort(), expiresAt: payload.exp! * 1000 };
    if (payload.admin === true) {
      if (this.admin) grant.admin = true;
      else this.logger.debug('"admin" claim ignored: the authenticator URI does not say admin=true');
    }
    return grant;
  }

  private refuse(reason: string): undefined {
    this.logger.debug({ reason }, 'token refused');
    return undefined;
  }
}

/** The HS256 secret held by the environment variable `name`, imported once rather than for every token. */
async function secretKey(name: string): Promise<webcrypto.CryptoKey> {
  const secret = process.env[name];
  if (!secret) throw new Error(`the environment variable ${name} is unset or empty: it must hold the HS256 secret`);
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_SECRET_BYTES) throw new Error(`the secret in ${name} is too short: HS256 needs at least ${MIN_SECRET_BYTES} bytes`);
  return webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
}

/** The public key in a PEM file, and the one algorithm its type signs with: a token naming another is refused. */
async function publicKey(file: string): Promise<{ key: webcrypto.CryptoKey; algorithms: string[] }> {
  let parsed: KeyObject;
  try {
    parsed = createPublicKey(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read a PEM public key from ${file}: ${(err as Error).message}`, { cause: err });
  }
  const algorithm = algorithmOf(parsed);
  if (!algorithm) throw new Error(`${file}: unsupported key (${describeKey(parsed)}): use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)`);
  // SPKI whatever the file held (a certificate, say), so jose imports it for that algorithm.
  const spki = parsed.export({ type: 'spki', format: 'pem' }).toString();
  return { key: await importSPKI(spki, algorithm), algorithms: [algorithm] };
}

function algorithmOf(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  return undefined;
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType} ${curve}` : String(key.asymmetricKeyType);
}
