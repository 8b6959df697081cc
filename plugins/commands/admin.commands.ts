/**
 * The admin commands: register, unregister, set, unset, tags,
 * who, listall. Only a connection authenticated with the admin token may run
 * them, and only when an authenticator is configured (the dispatcher refuses
 * them otherwise, from `role: 'admin'`).
 *
 * Taking permissions away is effective at once: after `unset` or
 * `unregister`, the token's live connections on this node lose the
 * subscriptions they may no longer hold, and their next subscribe or
 * publish is checked against the new tags (docs/auth.md).
 */
import { inject, injectable } from 'tsyringe';
import {
  command,
  CommandError,
  compareTagSets,
  definePlugin,
  TOKENS,
  type Auth,
  type Broker,
  type Connections,
  type Message,
  type Request,
} from '../../host/index.ts';

export default definePlugin({
  name: 'admin-commands',
  register(api) {
    api.commands.add(AdminCommands);
  },
});

/**
 * `register`, `set` and `unset` name the tags of the token they change, not
 * tags the admin uses: they are not checked as a request's tags (`checkTags:
 * false`). The others carry no tags.
 */
@injectable()
export class AdminCommands {
  constructor(
    @inject(TOKENS.Auth) private readonly access: Auth,
    @inject(TOKENS.Connections) private readonly connections: Connections,
    @inject(TOKENS.Broker) private readonly broker: Broker,
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
    const token = tokenOf(request);
    try {
      await this.access.unregister(token);
    } finally {
      this.revoke(token);
    }
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
    const token = tokenOf(request);
    try {
      await this.access.removeTags(token, request.tags);
    } finally {
      this.revoke(token);
    }
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
    for (const session of this.connections.sessions()) {
      for (const [key, tags] of session.subscriptions) all.set(key, tags);
    }
    return { command: 'listall', data: JSON.stringify([...all.values()].sort(compareTagSets)) };
  }

  /** Drops the subscriptions the token's live connections may no longer hold. */
  private revoke(token: string): void {
    for (const session of this.connections.sessions()) {
      const identity = session.identity;
      if (identity.role !== 'user' || identity.token !== token) continue;
      for (const tags of this.access.forbiddenSubscriptions(session)) this.broker.unsubscribe(session, tags);
    }
  }
}

/** The token an admin command is about: its `data`, a non-empty string. */
function tokenOf(request: Request): string {
  if (typeof request.data !== 'string' || request.data === '') {
    throw new CommandError(`"${request.command}" needs the token as data (a non-empty string)`);
  }
  return request.data;
}
