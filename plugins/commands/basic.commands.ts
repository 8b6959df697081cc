/**
 * The basic commands, available on every transport:
 * ping, subscribe, unsubscribe, publish, list, auth.
 */
// Only what the package exports, as a third-party plugin would import from 'mist'.
import {
  command,
  CommandError,
  compareTagSets,
  dataJson,
  definePlugin,
  inject,
  injectable,
  TOKENS,
  type Auth,
  type Broker,
  type Message,
  type Request,
  type Session,
} from '../../host/index.ts';

/** Failed `auth` attempts after which a connection is closed, so tokens cannot be guessed at leisure. */
export const MAX_FAILED_AUTHS = 3;

export default definePlugin({
  name: 'basic-commands',
  register(api) {
    api.commands.add(BasicCommands);
  },
});

/**
 * `ping`, `auth`, `list` and `unsubscribe` are not checked against the
 * token's tags (`checkTags: false`): tags sent with them are not tags the
 * connection uses. An anonymous connection must be able to ping and
 * authenticate, and one whose token lost tags must still list and drop what
 * it holds. `subscribe` and `publish` are, as every command is by default.
 */
@injectable()
export class BasicCommands {
  constructor(
    @inject(TOKENS.Broker) private readonly broker: Broker,
    @inject(TOKENS.Auth) private readonly access: Auth,
  ) {}

  @command('ping', { anonymous: true, checkTags: false })
  ping(): Message {
    return { command: 'ping', tags: [], data: 'pong' };
  }

  @command('subscribe', { tags: 'required' })
  subscribe(request: Request, session: Session): Message {
    this.broker.subscribe(session, request.tags);
    return { command: 'subscribe', tags: request.tags, data: 'success' };
  }

  /**
   * Removes exactly that tag set; unsubscribing from a set not held succeeds
   * and changes nothing. Not checked against the token's tags: a connection
   * may always let go of what it holds.
   */
  @command('unsubscribe', { tags: 'required', checkTags: false })
  unsubscribe(request: Request, session: Session): Message {
    this.broker.unsubscribe(session, request.tags);
    return { command: 'unsubscribe', tags: request.tags, data: 'success' };
  }

  /**
   * Fire-and-forget, like the original: no reply unless it fails. `data` goes
   * out exactly as it came. Returns the broker's promise when the delivery
   * waits or takes several turns, so the connection's next frames wait too.
   */
  @command('publish', { tags: 'required', data: 'any' })
  publish(request: Request, session: Session): Promise<void> | undefined {
    return this.broker.publish(session, request.tags, dataJson(request));
  }

  /**
   * `data` is a JSON-encoded string (not an array) so that clients of the
   * original, whose `data` is a string, still decode it.
   */
  @command('list', { checkTags: false })
  list(_request: Request, session: Session): Message {
    const subscriptions = [...session.subscriptions.values()].sort(compareTagSets);
    return { command: 'list', data: JSON.stringify(subscriptions) };
  }

  /**
   * Takes the identity a token grants, keeping only the subscriptions it
   * permits. A wrong token leaves the connection as it was; the third on one
   * connection closes it, successes in between or not (else a client with
   * one good token could guess others without end). Without an
   * authenticator anyone may do anything, so any token succeeds.
   */
  @command('auth', { anonymous: true, checkTags: false })
  async auth(request: Request, session: Session): Promise<Message> {
    if (typeof request.data !== 'string' || request.data === '') throw new CommandError('auth needs the token as data');
    const identity = await this.access.identify(request.data);
    if (identity) {
      session.identity = identity;
      // Subscriptions made under another identity, or before this token lost tags on another node, go.
      for (const tags of this.access.forbiddenSubscriptions(session)) this.broker.unsubscribe(session, tags);
      return { command: 'auth', data: 'success' };
    }
    if (++session.failedAuths >= MAX_FAILED_AUTHS) {
      throw new CommandError('invalid token; too many failed attempts, closing the connection', 'unauthenticated', { close: true });
    }
    throw new CommandError('invalid token', 'unauthenticated');
  }
}
