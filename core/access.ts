/**
 * The access rules as commands change them: `Auth` decides and stores, and
 * this applies each change to the live connections at once (docs/auth.md),
 * so that no command has to reach into sessions itself.
 */
import { inject, injectable } from 'tsyringe';
import type { Auth } from './auth.ts';
import type { TokenTags } from './authenticator.ts';
import type { Broker } from './broker.ts';
import type { Connections } from './connections.ts';
import type { AuthGuard } from './guard.ts';
import type { AccessService } from './services.ts';
import type { Session } from './session.ts';
import { TOKENS } from './tokens.ts';

@injectable()
export class Access implements AccessService {
  constructor(
    @inject(TOKENS.Auth) private readonly auth: Auth,
    @inject(TOKENS.Connections) private readonly connections: Connections,
    @inject(TOKENS.Broker) private readonly broker: Broker,
    @inject(TOKENS.Guard) private readonly guard: AuthGuard,
  ) {}

  async authenticate(session: Session, token: string): Promise<boolean> {
    const identity = await this.guard.identify(token, session.info);
    if (!identity) return false;
    session.authenticateAs(identity);
    // Subscriptions made under another identity, or before this token lost tags on another node, go.
    this.dropForbidden(session);
    return true;
  }

  register(token: string, tags: readonly string[]): Promise<void> {
    return this.auth.register(token, tags);
  }

  async unregister(token: string): Promise<void> {
    try {
      await this.auth.unregister(token);
    } finally {
      // A refusal may mean that another node changed the token: what its connections hold is checked either way.
      this.revoke(token);
    }
  }

  addTags(token: string, tags: readonly string[]): Promise<void> {
    return this.auth.addTags(token, tags);
  }

  async removeTags(token: string, tags: readonly string[]): Promise<void> {
    try {
      await this.auth.removeTags(token, tags);
    } finally {
      this.revoke(token);
    }
  }

  tagsOf(token: string): Promise<string[] | undefined> {
    return this.auth.tagsOf(token);
  }

  listTokens(): Promise<TokenTags[]> {
    return this.auth.listTokens();
  }

  /** Drops the subscriptions the token's live connections may no longer hold. */
  private revoke(token: string): void {
    for (const session of this.connections.list()) {
      const identity = session.identity;
      if (identity.role === 'user' && identity.token === token) this.dropForbidden(session);
    }
  }

  private dropForbidden(session: Session): void {
    for (const tags of this.auth.forbiddenSubscriptions(session)) this.broker.unsubscribe(session, tags);
  }
}
