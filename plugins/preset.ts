/**
 * The built-in plugins: what `mist --server` and `startServer` load before
 * the plugins a config lists. Each registers itself exactly as a third-party
 * plugin does; an embedder that wants a bare server passes its own list.
 */
import type { MistPlugin } from '../host/index.ts';
import jwtAuthenticator from './authenticators/jwt.authenticator.ts';
import memoryAuthenticator from './authenticators/memory.authenticator.ts';
import postgresAuthenticator from './authenticators/postgres.authenticator.ts';
import scribbleAuthenticator from './authenticators/scribble.authenticator.ts';
import natsBackplane from './backplanes/nats.backplane.ts';
import redisBackplane from './backplanes/redis.backplane.ts';
import adminCommands from './commands/admin.commands.ts';
import basicCommands from './commands/basic.commands.ts';
import httpListener from './listeners/http.listener.ts';
import tcpListener from './listeners/tcp.listener.ts';
import tlsListener from './listeners/tls.listener.ts';
import wsListener from './listeners/ws.listener.ts';

export const builtinPlugins: readonly MistPlugin[] = [
  basicCommands,
  adminCommands,
  tcpListener,
  tlsListener,
  wsListener,
  httpListener,
  memoryAuthenticator,
  scribbleAuthenticator,
  postgresAuthenticator,
  jwtAuthenticator,
  redisBackplane,
  natsBackplane,
] as readonly MistPlugin[];
