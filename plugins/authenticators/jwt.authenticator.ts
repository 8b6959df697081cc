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
import { definePlugin } from '../../host/index.ts';

export default definePlugin({
  name: 'jwt-authenticator',
  register(api) {
    // jose is loaded when a jwt:// authenticator is opened, not by every server.
    api.authenticators.register('jwt', async (url, context) => (await import('./jwt.ts')).JwtAuthenticator.open(url, context.logger));
  },
});
