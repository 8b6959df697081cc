/**
 * Signed-token scenes: keys made in the test with jose, tokens minted with
 * them, a server whose authenticator is `jwt://` with TCP and HTTP
 * listeners, and what each transport answers a token, in one shape so that
 * a rule is checked the same way on every one.
 */
import type { ExecutionContext } from 'ava';
import { SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { ConfigFile } from '../../host/config-schema.ts';
import type { MistServer } from '../../host/server.ts';
import { LineClient, startTestServer, type LogLines } from './server.ts';
import { postPublish, SseClient, websocketUrl, WsClient } from './web.ts';

export const ADMIN = 'admin-secret-jwt-7f3a';

/** The environment variable the HS256 scenes read their secret from; set for this test process. */
export const SECRET_ENV = 'MIST_TEST_JWT_SECRET';
export const SECRET = 'test-only-hs256-secret-of-more-than-32-bytes';
process.env[SECRET_ENV] = SECRET;

export const HS256_KEY = new TextEncoder().encode(SECRET);

/** Seconds since the epoch, as JWT times are. */
export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** A token signed with `key` by `alg`, with `claims` as they are (no claim added). */
export function mint(key: CryptoKey | Uint8Array, alg: string, claims: JWTPayload, header: { kid?: string } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(key);
}

/** An HS256 token for the scenes' secret, valid for an hour unless `claims` says otherwise. */
export function hs256(claims: JWTPayload): Promise<string> {
  return mint(HS256_KEY, 'HS256', { exp: now() + 3600, ...claims });
}

/** base64url of a JSON value or raw text, for tokens built by hand. */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export interface JwtScene {
  server: MistServer;
  logs: LogLines;
  tcp: string;
  http: string;
}

/** A server with `authenticator` (a `jwt://` URI), the admin token, and TCP and HTTP listeners. */
export async function jwtScene(t: ExecutionContext, authenticator: string, config: ConfigFile = {}): Promise<JwtScene> {
  const { server, logs } = await startTestServer(t, {
    listeners: ['tcp://127.0.0.1:0', 'http://127.0.0.1:0'],
    authenticator,
    token: ADMIN,
    ...config,
  });
  return { server, logs, tcp: server.url('tcp'), http: server.url('http') };
}

/** Where a token is tried: a line transport (`auth` on TCP, the header on a WebSocket), or one HTTP request. */
export type Attempt = 'tcp subscribe' | 'tcp publish' | 'ws subscribe' | 'ws publish' | 'http publish' | 'sse subscribe';

export const ATTEMPTS: readonly Attempt[] = ['tcp subscribe', 'tcp publish', 'ws subscribe', 'ws publish', 'http publish', 'sse subscribe'];

/**
 * What `token` gets when it subscribes to or publishes with `tags` on a
 * transport: `ok`, `invalid token` (refused as a wrong token is: the `auth`
 * error, or 401 with that error), `forbidden` (the tags are not permitted:
 * the error reply, or 403), or anything else as it came.
 */
export async function attempt(t: ExecutionContext, scene: JwtScene, how: Attempt, token: string, tags: string[]): Promise<string> {
  switch (how) {
    case 'tcp subscribe':
    case 'tcp publish': {
      const client = await LineClient.connect(t, scene.tcp);
      const auth = await client.request({ command: 'auth', data: token });
      if (auth.error !== undefined) return auth.error;
      const answer = await lineCommand(client, how === 'tcp publish' ? 'publish' : 'subscribe', tags);
      client.close();
      return answer;
    }
    case 'ws subscribe':
    case 'ws publish': {
      let client: WsClient;
      try {
        client = await WsClient.connect(t, websocketUrl(scene.http), { headers: { 'x-auth-token': token } });
      } catch (err) {
        // The refusal's body is not readable through ws: 401 is what a wrong token gets before the upgrade.
        return (err as { status?: number }).status === 401 ? 'invalid token' : String(err);
      }
      const answer = await lineCommand(client, how === 'ws publish' ? 'publish' : 'subscribe', tags);
      client.close();
      return answer;
    }
    case 'http publish': {
      const reply = await postPublish(scene.http, { tags, data: 'x' }, { 'x-auth-token': token });
      return httpAnswer(reply.status, reply.body, 204);
    }
    case 'sse subscribe':
      try {
        const stream = await SseClient.connect(t, scene.http, `?tags=${tags.join(',')}`, { 'x-auth-token': token });
        stream.close();
        return 'ok';
      } catch (err) {
        const { status, body } = err as { status?: number; body?: string };
        return status === undefined ? String(err) : httpAnswer(status, body ?? '', 200);
      }
  }
}

/** Subscribes or publishes on a line transport; a publish, which has no reply, is followed by a ping to see whether it was refused. */
async function lineCommand(client: LineClient | WsClient, command: 'subscribe' | 'publish', tags: string[]): Promise<string> {
  client.send({ command, tags, data: 'x' });
  if (command === 'publish') client.send({ command: 'ping' });
  const reply = await client.next();
  if (reply.data === 'success' || reply.command === 'ping') return 'ok';
  if (typeof reply.error === 'string' && reply.error.startsWith('not permitted to use tags')) return 'forbidden';
  return JSON.stringify(reply);
}

function httpAnswer(status: number, body: string, success: number): string {
  if (status === success) return 'ok';
  if (status === 401 && body === JSON.stringify({ error: 'invalid token' })) return 'invalid token';
  if (status === 403) return 'forbidden';
  return `${status} ${body}`;
}

/** Fails the test if `secret` or any of `tokens` appears in any log line. */
export function assertNotLogged(t: ExecutionContext, logs: LogLines, secrets: readonly string[]): void {
  const text = JSON.stringify(logs);
  for (const secret of secrets) t.false(text.includes(secret), `${secret.slice(0, 16)}… appears in the log`);
}

/** The reasons logged for refused tokens, in order. */
export function refusals(logs: LogLines): string[] {
  return logs.filter((line) => line.msg === 'token refused').map((line) => String(line.reason));
}
