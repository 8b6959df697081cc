/**
 * `jwt://` — signed tokens (JSON Web Tokens) that your backend mints. There
 * is no token store: each token's signature and claims are checked with
 * `jose`, and its tags are its `tags` claim. The key, one of:
 *
 * - `jwt://?secret-env=NAME`: HS256, with the secret read from the
 *   environment variable NAME, so it is never in a URI, a config file or a log;
 * - `jwt://?public-key=FILE`: a PEM public key; the key's type gives the
 *   algorithm: RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA;
 * - `jwt://?jwks=FILE`: a JSON Web Key Set of public keys (RS256, ES256,
 *   EdDSA), re-read when the file changes: keys rotate without a restart.
 *
 * Optional: `&aud=…` and `&iss=…` (then every token must carry that
 * audience and issuer), `&admin=true` (a token claiming `"admin": true` is
 * then the admin; without it such a claim grants only the token's tags).
 *
 * Claims: `tags` (an array of strings) and `exp` are required; `nbf` is
 * checked when present. A token refused for any reason is answered as a
 * wrong token is; the reason is logged at DEBUG, the token never.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createLocalJWKSet, errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { type Authenticator, CommandError, definePlugin, type Grant, type Logger } from '../../host/index.ts';

export default definePlugin({
  name: 'jwt-authenticator',
  register(api) {
    api.authenticators.register('jwt', (url, context) => JwtAuthenticator.open(url, context.logger));
  },
});

/** The answer to every admin command that would change a token. */
export const NO_TOKEN_STORE = 'the jwt authenticator has no token store: tokens are signed by your backend';

/** Longer tokens are refused unread: parsing and verifying cost grows with the size, and real ones are far smaller. */
const MAX_TOKEN_BYTES = 8 * 1024;

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash. */
const MIN_SECRET_BYTES = 32;

/** How often a JWKS file is checked for changes. */
const JWKS_POLL_MS = 1000;

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
  let pem: string;
  let parsed: KeyObject;
  try {
    pem = await readFile(file, 'utf8');
    parsed = createPublicKey(pem);
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

/**
 * A JWKS file, checked for changes every {@link JWKS_POLL_MS} and re-read
 * then. A rewrite that cannot be read or is not a key set (half written,
 * deleted) is logged and the last good set kept. Polling the path, unlike
 * watching the file, also sees a new file renamed over the old one.
 */
class KeySetFile {
  private reloading: Promise<void> = Promise.resolve();
  private readonly changed = (): void => {
    // One re-read at a time, so an older read cannot land after a newer one.
    this.reloading = this.reloading.then(() => this.reload());
  };

  private constructor(
    private readonly file: string,
    private keys: JWTVerifyGetKey,
    private readonly logger: Logger,
  ) {
    watchFile(file, { interval: JWKS_POLL_MS, persistent: false }, this.changed);
  }

  static async open(file: string, logger: Logger): Promise<KeySetFile> {
    return new KeySetFile(file, await readKeySet(file), logger);
  }

  /** Resolves the key for a token from the current set. */
  readonly getKey: JWTVerifyGetKey = (header, token) => this.keys(header, token);

  close(): void {
    unwatchFile(this.file, this.changed);
  }

  private async reload(): Promise<void> {
    try {
      this.keys = await readKeySet(this.file);
      this.logger.info({ file: this.file }, 'JWKS file reloaded');
    } catch (err) {
      this.logger.warn({ file: this.file, error: (err as Error).message }, 'JWKS file not reloaded: keeping the last good key set');
    }
  }
}

async function readKeySet(file: string): Promise<JWTVerifyGetKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read JWKS file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return createLocalJWKSet(JSON.parse(text));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'it is not valid JSON' : (err as Error).message;
    throw new Error(`JWKS file ${file} is not a key set: ${why}`, { cause: err });
  }
}
