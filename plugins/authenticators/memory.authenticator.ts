/**
 * `memory://` — tokens and their tags in a map in this process. Nothing
 * survives a restart; suits development, tests and single-node set-ups that
 * register their tokens at start.
 */
// Only what the package exports, as a third-party plugin would import from 'mist'.
import { CommandError, definePlugin, type Authenticator, type TokenTags } from '../../host/index.ts';

export default definePlugin({
  name: 'memory-authenticator',
  register(api) {
    api.authenticators.register('memory', () => new MemoryAuthenticator());
  },
});

export class MemoryAuthenticator implements Authenticator {
  private readonly tokens = new Map<string, Set<string>>();

  async addToken(token: string, tags: readonly string[]): Promise<void> {
    if (this.tokens.has(token)) throw new CommandError('token already exists');
    this.tokens.set(token, new Set(tags));
  }

  async removeToken(token: string): Promise<void> {
    if (!this.tokens.delete(token)) throw new CommandError('no such token');
  }

  async addTags(token: string, tags: readonly string[]): Promise<void> {
    const held = this.held(token);
    for (const tag of tags) held.add(tag);
  }

  async removeTags(token: string, tags: readonly string[]): Promise<void> {
    const held = this.held(token);
    for (const tag of tags) held.delete(tag);
  }

  async tagsFor(token: string): Promise<string[] | undefined> {
    const held = this.tokens.get(token);
    return held && [...held].sort();
  }

  async listTokens(): Promise<TokenTags[]> {
    return [...this.tokens].map(([token, tags]) => ({ token, tags: [...tags] }));
  }

  async close(): Promise<void> {
    this.tokens.clear();
  }

  private held(token: string): Set<string> {
    const held = this.tokens.get(token);
    if (!held) throw new CommandError('no such token');
    return held;
  }
}
