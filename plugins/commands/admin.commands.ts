/**
 * The admin commands: register, unregister, set, unset, tags,
 * tokens, who, listall. Only a connection authenticated with the admin token may run
 * them, and only when an authenticator is configured (the dispatcher refuses
 * them otherwise, from `role: 'admin'`).
 *
 * Taking permissions away is effective at once (`api.access` sees to it):
 * after `unset` or `unregister`, the token's live connections on this node
 * lose the subscriptions they may no longer hold, and their next subscribe
 * or publish is checked against the new tags (docs/auth.md).
 */
import {
  command,
  CommandError,
  definePlugin,
  type AccessService,
  type BrokerService,
  type ConnectionsService,
  type Message,
  type Request,
} from '../../host/index.ts';
import { compareTagSets } from './tag-sets.ts';

export default definePlugin({
  name: 'admin-commands',
  register(api) {
    api.commands.add(new AdminCommands(api.access, api.connections, api.broker));
  },
});

/**
 * `register`, `set` and `unset` name the tags of the token they change, not
 * tags the admin uses: they are not checked as a request's tags (`checkTags:
 * false`). The others carry no tags.
 */
export class AdminCommands {
  constructor(
    private readonly access: AccessService,
    private readonly connections: ConnectionsService,
    private readonly broker: BrokerService,
  ) {}

  /** Creates a token with its tags; an error if it exists. */
  @command('register', { role: 'admin', tags: 'required', checkTags: false })
  async register(request: Request): Promise<Message> {
    await this.access.register(tokenOf(request), request.tags);
    return { command: 'register', data: 'success' };
  }

  /** Deletes a token; its live connections lose every subscription and may subscribe or publish no more. */
  @command('unregister', { role: 'admin' })
  async unregister(request: Request): Promise<Message> {
    await this.access.unregister(tokenOf(request));
    return { command: 'unregister', data: 'success' };
  }

  /** Adds tags to a token. */
  @command('set', { role: 'admin', tags: 'required', checkTags: false })
  async set(request: Request): Promise<Message> {
    await this.access.addTags(tokenOf(request), request.tags);
    return { command: 'set', data: 'success' };
  }

  /** Removes tags from a token; its live connections lose the subscriptions that used them. */
  @command('unset', { role: 'admin', tags: 'required', checkTags: false })
  async unset(request: Request): Promise<Message> {
    await this.access.removeTags(tokenOf(request), request.tags);
    return { command: 'unset', data: 'success' };
  }

  /** A token's tags, sorted. */
  @command('tags', { role: 'admin' })
  async tags(request: Request): Promise<Message> {
    const tags = await this.access.tagsOf(tokenOf(request));
    if (tags === undefined) throw new CommandError('no such token');
    return { command: 'tags', tags };
  }

  /**
   * Every token with its tags, sorted by token, as a JSON-encoded list in
   * `data`: `[{"token":"t","tags":["a","b"]}]`. Refused by a store that
   * keeps no tokens (jwt://).
   */
  @command('tokens', { role: 'admin' })
  async tokens(): Promise<Message> {
    return { command: 'tokens', data: JSON.stringify(await this.access.listTokens()) };
  }

  /**
   * Connections open now and since start, and distinct subscriptions on this
   * node, as a JSON-encoded object in `data` (a string, like `list`'s).
   */
  @command('who', { role: 'admin' })
  who(): Message {
    const stats = { connections: this.connections.count, total: this.connections.total, subscriptions: this.broker.subscriptionCount };
    return { command: 'who', data: JSON.stringify(stats) };
  }

  /** Every distinct subscription on this node, each sorted, the list sorted, JSON-encoded in `data`. */
  @command('listall', { role: 'admin' })
  listall(): Message {
    const all = new Map<string, readonly string[]>();
    for (const connection of this.connections.list()) {
      for (const [key, tags] of connection.subscriptions) all.set(key, tags);
    }
    return { command: 'listall', data: JSON.stringify([...all.values()].sort(compareTagSets)) };
  }
}

/** The token an admin command is about: its `data`, a non-empty string. */
function tokenOf(request: Request): string {
  if (typeof request.data !== 'string' || request.data === '') {
    throw new CommandError(`"${request.command}" needs the token as data (a non-empty string)`);
  }
  return request.data;
}
