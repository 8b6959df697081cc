/**
 * The basic commands of SPEC §3, available on every transport:
 * ping, subscribe, unsubscribe, publish, list.
 */
// Only what the package exports, as a third-party plugin would import from 'mist'.
import {
  command,
  compareTagSets,
  dataJson,
  definePlugin,
  inject,
  injectable,
  TOKENS,
  type Broker,
  type Message,
  type Request,
  type Session,
} from '../../core/index.ts';

export default definePlugin({
  name: 'basic-commands',
  register(api) {
    api.commands.add(BasicCommands);
  },
});

@injectable()
export class BasicCommands {
  constructor(@inject(TOKENS.Broker) private readonly broker: Broker) {}

  @command('ping')
  ping(): Message {
    return { command: 'ping', tags: [], data: 'pong' };
  }

  @command('subscribe', { tags: 'required' })
  subscribe(request: Request, session: Session): Message {
    this.broker.subscribe(session, request.tags);
    return { command: 'subscribe', tags: request.tags, data: 'success' };
  }

  /** Removes exactly that tag set; unsubscribing from a set not held succeeds and changes nothing. */
  @command('unsubscribe', { tags: 'required' })
  unsubscribe(request: Request, session: Session): Message {
    this.broker.unsubscribe(session, request.tags);
    return { command: 'unsubscribe', tags: request.tags, data: 'success' };
  }

  /** Fire-and-forget, like the original: no reply unless it fails. `data` goes out exactly as it came. */
  @command('publish', { tags: 'required', data: 'any' })
  publish(request: Request, session: Session): void {
    this.broker.publish(session, request.tags, dataJson(request));
  }

  /**
   * `data` is a JSON-encoded string (not an array) so that clients of the
   * original, whose `data` is a string, still decode it.
   */
  @command('list')
  list(_request: Request, session: Session): Message {
    const subscriptions = [...session.subscriptions.values()].sort(compareTagSets);
    return { command: 'list', data: JSON.stringify(subscriptions) };
  }
}
