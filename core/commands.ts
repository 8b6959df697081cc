/**
 * Commands are methods declared with the {@link command} decorator on a
 * class whose instances a plugin hands to the {@link CommandRegistry}. The
 * basic commands (ping, subscribe…) are declared exactly this way.
 *
 * @example
 * ```ts
 * class EchoCommands {
 *   @command('echo', { data: 'string' })
 *   echo(request: Request): Message {
 *     return { command: 'echo', data: request.data };
 *   }
 * }
 * // in a plugin's register(api):
 * api.commands.add(new EchoCommands());
 * ```
 */
import { ErrorCodes, MistError } from './errors.ts';
import type { Message, Request } from './protocol.ts';
import type { Role } from './auth.ts';
import type { Connection } from './services.ts';

export interface CommandOptions {
  /** Who may run it: `user` (default: any authenticated connection) or `admin` only. */
  role?: Exclude<Role, 'anonymous'>;
  /** Whether a connection that has not authenticated may run it (`ping`, `auth`). Default false. */
  anonymous?: boolean;
  /**
   * Whether the request's tags, when it has any, must all be among the tags
   * the connection's token permits, as for subscribe and publish. Default
   * true; `false` for a command whose tags are not the connection's to use
   * (unsubscribe lets go of them, an admin's `register` names another
   * token's).
   */
  checkTags?: boolean;
  /** `required`: the request must carry at least one tag. Default `optional`. */
  tags?: 'required' | 'optional';
  /** `string` (default): `data`, when present, must be a string; `any`: any JSON value. */
  data?: 'string' | 'any';
}

/**
 * Runs a validated request. Returns the reply (or nothing, for
 * fire-and-forget commands); throws `CommandError` to refuse. May be async:
 * the connection's next frames then wait for it, so order is kept.
 */
export type CommandHandler = (request: Request, connection: Connection) => Message | void | Promise<Message | void>;

export interface CommandSpec extends Required<CommandOptions> {
  name: string;
  /** The plugin that declared it, for messages. */
  plugin: string;
  handler: CommandHandler;
}

interface Declaration {
  name: string;
  method: string | symbol;
  options: CommandOptions;
}

// A registered symbol, so that a plugin whose `mist` resolved to another copy
// of this file (a second install, a copied link) still declares commands this
// server finds.
const DECLARATIONS = Symbol.for('mist.commands');

type Declaring = { [DECLARATIONS]?: Declaration[] };

/** Declares a method as the handler of command `name`. */
export function command(name: string, options: CommandOptions = {}) {
  return (target: object, method: string | symbol, _descriptor: PropertyDescriptor): void => {
    // A standard (TC39) decorator gets a context object here, and its class would declare nothing.
    if (typeof (method as unknown) === 'object') {
      throw new MistError(
        ErrorCodes.PLUGIN,
        `@command('${name}') was compiled as a standard decorator: mist's decorators are TypeScript's legacy ones; set "experimentalDecorators": true in the tsconfig.json that compiles it`,
      );
    }
    const owner = target.constructor as Declaring;
    // Copy on first write so a subclass's declarations never leak into its base.
    if (!Object.hasOwn(owner, DECLARATIONS)) owner[DECLARATIONS] = [...(owner[DECLARATIONS] ?? [])];
    owner[DECLARATIONS]!.push({ name, method, options });
  };
}

/** Every command the server knows, by name. One name, one owner. */
export class CommandRegistry {
  private readonly specs = new Map<string, CommandSpec>();

  /**
   * Registers the declared commands of `handlers`: an object made from a
   * class with `@command` methods, or such a class, made here without
   * arguments.
   */
  add(handlers: object, plugin: string): void {
    const instance = (typeof handlers === 'function' ? make(handlers, plugin) : handlers) as Record<string | symbol, unknown>;
    const declarations = (instance.constructor as Declaring)[DECLARATIONS] ?? [];
    if (declarations.length === 0) {
      throw new MistError(ErrorCodes.PLUGIN, `plugin "${plugin}" added a class with no @command methods`);
    }
    for (const { name, method, options } of declarations) {
      const owner = this.specs.get(name);
      if (owner) {
        throw new MistError(
          ErrorCodes.DUPLICATE_COMMAND,
          `command "${name}" is declared by both plugin "${owner.plugin}" and plugin "${plugin}"`,
        );
      }
      const handler = (instance[method] as CommandHandler).bind(instance);
      this.specs.set(name, { name, plugin, handler, role: 'user', anonymous: false, checkTags: true, tags: 'optional', data: 'string', ...options });
    }
  }

  get(name: string): CommandSpec | undefined {
    return this.specs.get(name);
  }

  /** Every command's name, sorted. */
  names(): string[] {
    return [...this.specs.keys()].sort();
  }
}

/** An instance of a handler class; one whose constructor wants arguments must be made by the plugin, which has them. */
function make(handlers: Function, plugin: string): object {
  if (handlers.length > 0) {
    throw new MistError(
      ErrorCodes.PLUGIN,
      `plugin "${plugin}" added the class ${handlers.name}, whose constructor takes arguments: add an object made from it instead`,
    );
  }
  return new (handlers as new () => object)();
}
