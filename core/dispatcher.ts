/**
 * Runs one frame of client input: parse, validate, check identity and
 * permissions, call the command's handler, reply. Every transport goes
 * through here, so every check is made once, the same way, for all of them.
 */
import { inject, injectable } from 'tsyringe';
import type { Auth } from './auth.ts';
import type { CommandRegistry, CommandSpec } from './commands.ts';
import { TOKENS } from './tokens.ts';
import { CommandError } from './errors.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import { INVALID_MESSAGE_COMMAND, parseRequest, type Message, type Request } from './protocol.ts';
import type { Session } from './session.ts';

export const UNKNOWN_COMMAND = 'Unknown Command';

@injectable()
export class Dispatcher {
  /** Commands that failed, by any cause (bad input, refusal, handler fault). */
  errors = 0;

  constructor(
    @inject(TOKENS.Commands) private readonly commands: CommandRegistry,
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Auth) private readonly auth: Auth,
  ) {}

  /** Handles one frame. Returns a promise only when the command is asynchronous. */
  dispatch(session: Session, frame: string | Buffer): Promise<void> | void {
    let request: Request;
    try {
      request = parseRequest(frame, this.limits);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      // V8 quotes the start of bad JSON in its message, which may hold a token: the client sees it, the log does not.
      return this.fail(session, err.command ?? INVALID_MESSAGE_COMMAND, err.message, err.message.startsWith('invalid JSON') ? 'invalid JSON' : err.message);
    }
    const spec = this.commands.get(request.command);
    if (!spec) return this.fail(session, request.command, UNKNOWN_COMMAND);
    const refusal = this.refuse(spec, request, session);
    if (refusal) return this.fail(session, spec.name, refusal);

    let result: ReturnType<CommandSpec['handler']>;
    try {
      result = spec.handler(request, session);
    } catch (err) {
      return this.failWith(session, spec.name, err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (reply) => this.send(session, reply),
        (err: unknown) => this.failWith(session, spec.name, err),
      );
    }
    this.send(session, result);
  }

  private send(session: Session, reply: Message | void): void {
    if (reply) session.reply(reply);
  }

  private failWith(session: Session, command: string, err: unknown): void {
    if (err instanceof CommandError) return this.fail(session, command, err.message);
    // A fault in a handler is a bug, not the client's doing: log it, keep the connection.
    this.logger.error({ err, command, session: session.id }, 'command handler failed');
    this.fail(session, command, 'internal error');
  }

  private fail(session: Session, command: string, error: string, logged = error): void {
    this.errors++;
    this.logger.debug({ session: session.id, command, error: logged }, 'command refused');
    session.reply({ command, error });
  }

  /** Why `request` may not run `spec`, or undefined when it may. */
  private refuse(spec: CommandSpec, request: Request, session: Session): string | undefined {
    const role = session.identity.role;
    if (role === 'anonymous' && !spec.anonymous) return 'not authenticated: send auth first';
    if (spec.role === 'admin' && role !== 'admin') {
      if (this.auth.required) return `"${spec.name}" needs the admin token`;
      return `"${spec.name}" is an admin command: it needs an authenticator (start mist with --authenticator)`;
    }
    if (spec.tags === 'required' && request.tags.length === 0) return `"${spec.name}" needs at least one tag`;
    if (spec.data === 'string' && request.data !== undefined && typeof request.data !== 'string') {
      return '"data" must be a string';
    }
    if (spec.tagPermission) return this.auth.refuseTags(session, request.tags);
    return undefined;
  }
}

function isThenable(value: unknown): value is PromiseLike<Message | void> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}
