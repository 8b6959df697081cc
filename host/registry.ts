/**
 * URI-scheme registries: a listener, authenticator or backplane is chosen by
 * the scheme of its URI (`tcp://…`, `postgres://…`, `redis://…`), and any
 * plugin may register a scheme.
 */
import { ErrorCodes, MistError } from '../core/errors.ts';
import { uriProblem, withoutPassword } from './uri.ts';

export class SchemeRegistry<Factory> {
  private readonly factories = new Map<string, { factory: Factory; plugin: string }>();

  constructor(
    /** What the registry holds, for messages: `listener`, `authenticator`… */
    readonly kind: string,
  ) {}

  /** Registers `scheme` (without `://`) for `plugin`; a scheme has one owner. */
  register(scheme: string, factory: Factory, plugin: string): void {
    const owner = this.factories.get(scheme);
    if (owner) {
      throw new MistError(
        ErrorCodes.DUPLICATE_SCHEME,
        `${this.kind} scheme "${scheme}" is registered by both plugin "${owner.plugin}" and plugin "${plugin}"`,
      );
    }
    this.factories.set(scheme, { factory, plugin });
  }

  /**
   * Finds the factory for a URI, or fails naming the scheme and the known
   * ones; `key` is the config key the URI came from, for the error.
   */
  resolve(uri: string, key?: string): { url: URL; factory: Factory } {
    const problem = uriProblem(uri);
    if (problem) throw new MistError(ErrorCodes.CONFIG, `invalid ${this.kind} URI "${withoutPassword(uri)}": ${problem}`, { key });
    const url = new URL(uri);
    const scheme = url.protocol.slice(0, -1);
    const entry = this.factories.get(scheme);
    if (!entry) {
      const known = this.schemes().join(', ') || 'none';
      throw new MistError(ErrorCodes.UNKNOWN_SCHEME, `unknown ${this.kind} scheme "${scheme}" in "${withoutPassword(uri)}" (known: ${known})`, { key });
    }
    return { url, factory: entry.factory };
  }

  schemes(): string[] {
    return [...this.factories.keys()].sort();
  }
}
