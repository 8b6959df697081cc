/**
 * The basic commands, available on every transport:
 * ping, subscribe, unsubscribe, publish, resume, list, auth.
 */
// Only what the package exports, as a third-party plugin would import from 'mist'.
import {
  command,
  CommandError,
  dataJson,
  definePlugin,
  type AccessService,
  type BrokerService,
  type Connection,
  type Message,
  type Request,
  type ResumeOutcome,
} from '../../host/index.ts';
import { compareTagSets } from './tag-sets.ts';

/** Failed `auth` attempts after which a connection is closed, so tokens cannot be guessed at leisure. */
export const MAX_FAILED_AUTHS = 3;

export default definePlugin({
  name: 'basic-commands',
  register(api) {
    api.commands.add(new BasicCommands(api.broker, api.access));
  },
});

function resumed(outcome: ResumeOutcome): Message {
  return { command: 'resume', tags: [], data: outcome };
}

/**
 * `ping`, `auth`, `list`, `unsubscribe` and `resume` are not checked against the
 * token's tags (`checkTags: false`): tags sent with them are not tags the
 * connection uses. An anonymous connection must be able to ping and
 * authenticate, and one whose token lost tags must still list and drop what
 * it holds. `subscribe` and `publish` are, as every command is by default.
 */
export class BasicCommands {
  /** Failed `auth` attempts over each connection's life. */
  private readonly failedAuths = new WeakMap<Connection, number>();

  constructor(
    private readonly broker: BrokerService,
    private readonly access: AccessService,
  ) {}

  @command('ping', { anonymous: true, checkTags: false })
  ping(): Message {
    return { command: 'ping', tags: [], data: 'pong' };
  }

  @command('subscribe', { tags: 'required' })
  subscribe(request: Request, connection: Connection): Message {
    this.broker.subscribe(connection, request.tags);
    return { command: 'subscribe', tags: request.tags, data: 'success' };
  }

  /**
   * Removes exactly that tag set; unsubscribing from a set not held succeeds
   * and changes nothing. Not checked against the token's tags: a connection
   * may always let go of what it holds.
   */
  @command('unsubscribe', { tags: 'required', checkTags: false })
  unsubscribe(request: Request, connection: Connection): Message {
    this.broker.unsubscribe(connection, request.tags);
    return { command: 'unsubscribe', tags: request.tags, data: 'success' };
  }

  /**
   * Fire-and-forget, like the original: no reply unless it fails. `data` goes
   * out exactly as it came. Returns the broker's promise when the delivery
   * waits or takes several turns, so the connection's next frames wait too.
   */
  @command('publish', { tags: 'required', data: 'any' })
  publish(request: Request, connection: Connection): Promise<void> | undefined {
    return this.broker.publish(connection, request.tags, dataJson(request));
  }

  /**
   * Replays what the connection missed after the id in `data`, then answers
   * `success`, or `gap` when history did not reach back that far
   * (docs/protocol.md#resume). Not checked against the token's tags: it
   * carries none, and replays only through subscriptions the token allowed.
   */
  @command('resume', { data: 'string', checkTags: false })
  resume(request: Request, connection: Connection): Message | Promise<Message> {
    if (typeof request.data !== 'string' || request.data === '') throw new CommandError('resume needs the id of the last message received as data');
    const outcome = this.broker.resume(connection, request.data);
    return outcome instanceof Promise ? outcome.then(resumed) : resumed(outcome);
  }

  /**
   * `data` is a JSON-encoded string (not an array) so that clients of the
   * original, whose `data` is a string, still decode it.
   */
  @command('list', { checkTags: false })
  list(_request: Request, connection: Connection): Message {
    const subscriptions = [...connection.subscriptions.values()].sort(compareTagSets);
    return { command: 'list', data: JSON.stringify(subscriptions) };
  }

  /**
   * Takes the identity a token grants, keeping only the subscriptions it
   * permits. A wrong token leaves the connection as it was and is answered
   * after the failure delay (the connection's later input waits behind it);
   * the third on one connection closes it, successes in between or not (else
   * a client with one good token could guess others without end). Too many
   * checks from the connection's address at once close it at once
   * (core/guard.ts). Without an authenticator anyone may do anything, so any
   * token succeeds.
   */
  @command('auth', { anonymous: true, checkTags: false })
  async auth(request: Request, connection: Connection): Promise<Message> {
    if (typeof request.data !== 'string' || request.data === '') throw new CommandError('auth needs the token as data');
    if (await this.access.authenticate(connection, request.data)) return { command: 'auth', data: 'success' };
    const failed = (this.failedAuths.get(connection) ?? 0) + 1;
    this.failedAuths.set(connection, failed);
    if (failed >= MAX_FAILED_AUTHS) {
      throw new CommandError('invalid token; too many failed attempts, closing the connection', 'unauthenticated', { close: true });
    }
    throw new CommandError('invalid token', 'unauthenticated');
  }
}
