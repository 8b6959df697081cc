/**
 * Authentication scenes for end-to-end tests: a server with an
 * authenticator, an admin connection, and users authenticated with
 * registered tokens — all over real TCP.
 */
import type { ExecutionContext } from 'ava';
import type { ConfigFile } from '../../host/config-schema.ts';
import type { MistServer } from '../../host/server.ts';
import { LineClient, startTestServer, type LogLines } from './server.ts';

export const ADMIN = 'admin-secret-9c1e';

export interface AuthScene {
  server: MistServer;
  logs: LogLines;
  /** A connection authenticated with the admin token. */
  admin: LineClient;
  /** Connects and authenticates with `token`, expecting success. */
  user(token: string): Promise<LineClient>;
  /** Connects without authenticating. */
  anonymous(): Promise<LineClient>;
  /** Fails the test if any of `tokens` (and the admin token) appears in any log line. */
  assertNoTokensLogged(tokens: readonly string[]): void;
}

export async function authScene(t: ExecutionContext, config: ConfigFile = { authenticator: 'memory://' }): Promise<AuthScene> {
  const { server, logs } = await startTestServer(t, { token: ADMIN, ...config });
  const anonymous = () => LineClient.connect(t, server.url('tcp'));
  const user = async (token: string): Promise<LineClient> => {
    const client = await anonymous();
    const reply = await client.request({ command: 'auth', data: token });
    if (reply.data !== 'success') throw new Error(`auth failed: ${JSON.stringify(reply)}`);
    return client;
  };
  return {
    server,
    logs,
    admin: await user(ADMIN),
    user,
    anonymous,
    assertNoTokensLogged(tokens) {
      const text = JSON.stringify(logs);
      for (const token of [ADMIN, ...tokens]) {
        // The log is JSON: look for the token as written there, escapes and all.
        const escaped = JSON.stringify(token).slice(1, -1);
        t.false(text.includes(token) || text.includes(escaped), `token ${JSON.stringify(token)} appears in the log`);
      }
    },
  };
}
