/**
 * Runs one request: parse, validate, check identity and permissions, call
 * the command's handler, and say what came of it as a typed result. Every
 * transport goes through here, so every check is made once, the same way,
 * for all of them; each transport then answers the result in its own terms.
 */
import { inject, injectable } from 'tsyringe';
import type { Auth } from './auth.ts';
import type { CommandRegistry, CommandSpec } from './commands.ts';
import { TOKENS } from './tokens.ts';
import { CommandError } from './errors.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import { checkRequest, INVALID_MESSAGE_COMMAND, parseRequest, type Message, type Request, type RequestFields } from './protocol.ts';
import type { CommandResult, Refusal, Refused, Success } from './result.ts';
import type { Session } from './session.ts';

export const UNKNOWN_COMMAND = 'Unknown Command';

/** The result of every fire-and-forget command: one object, not one per publish. */
const NO_REPLY: Success = Object.freeze({ ok: true, reply: undefined });

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

  /** Runs one frame of input. Returns a promise only when the command is asynchronous; it never rejects. */
  dispatch(session: Session, frame: string | Buffer): CommandResult | Promise<CommandResult> {
    let request: Request;
    try {
      request = parseRequest(frame, this.limits);
    } catch (err) {
      return this.invalid(session, err);
    }
    return this.run(session, request);
  }

  /** Runs a request a transport built itself rather than read as a frame; its fields are checked as a frame's are. */
  execute(session: Session, fields: RequestFields): CommandResult | Promise<CommandResult> {
    let request: Request;
    try {
      request = checkRequest(fields, this.limits);
    } catch (err) {
      return this.invalid(session, err);
    }
    return this.run(session, request);
  }

  private run(session: Session, request: Request): CommandResult | Promise<CommandResult> {
    const spec = this.commands.get(request.command);
    if (!spec) return this.refused(session, request.command, { kind: 'unknown', error: UNKNOWN_COMMAND });
    const refusal = this.refuse(spec, request, session);
    if (refusal) return this.refused(session, spec.name, refusal);

    let reply: ReturnType<CommandSpec['handler']>;
    try {
      reply = spec.handler(request, session);
    } catch (err) {
      return this.failed(session, spec.name, err);
    }
    if (isThenable(reply)) {
      return Promise.resolve(reply).then(success, (err: unknown) => this.failed(session, spec.name, err));
    }
    return success(reply);
  }

  private invalid(session: Session, err: unknown): Refused {
    if (!(err instanceof CommandError)) throw err;
    // V8 quotes the start of bad JSON in its message, which may hold a token: the client sees it, the log does not.
    const logged = err.message.startsWith('invalid JSON') ? 'invalid JSON' : err.message;
    return this.refused(session, err.command ?? INVALID_MESSAGE_COMMAND, { kind: err.kind, error: err.message }, logged);
  }

  private failed(session: Session, command: string, err: unknown): Refused {
    if (err instanceof CommandError) {
      const refused = this.refused(session, command, { kind: err.kind, error: err.message });
      return err.close ? { ...refused, close: true } : refused;
    }
    // A fault in a handler is a bug, not the client's doing: log it, keep the connection.
    this.logger.error({ err, command, session: session.id }, 'command handler failed');
    return this.refused(session, command, { kind: 'failed', error: 'internal error' });
  }

  private refused(session: Session, command: string, refusal: Refusal, logged = refusal.error): Refused {
    this.errors++;
    this.logger.debug({ session: session.id, command, kind: refusal.kind, error: logged }, 'command refused');
    return { ok: false, command, kind: refusal.kind, error: refusal.error };
  }

  /** Why `request` may not run `spec`, or undefined when it may. */
  private refuse(spec: CommandSpec, request: Request, session: Session): Refusal | undefined {
    const role = session.identity.role;
    if (role === 'anonymous' && !spec.anonymous) return { kind: 'unauthenticated', error: 'not authenticated: send auth first' };
    if (spec.role === 'admin' && role !== 'admin') {
      if (this.auth.required) return { kind: 'forbidden', error: `"${spec.name}" needs the admin token` };
      return { kind: 'forbidden', error: `"${spec.name}" is an admin command: it needs an authenticator (start mist with --authenticator)` };
    }
    if (spec.tags === 'required' && request.tags.length === 0) return { kind: 'invalid', error: `"${spec.name}" needs at least one tag` };
    if (spec.data === 'string' && request.data !== undefined && typeof request.data !== 'string') {
      return { kind: 'invalid', error: '"data" must be a string' };
    }
    if (spec.checkTags && request.tags.length > 0) return this.auth.refuseTags(session, request.tags);
    return undefined;
  }
}

function success(reply: Message | void): Success {
  return reply ? { ok: true, reply } : NO_REPLY;
}

function isThenable(value: unknown): value is PromiseLike<Message | void> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}
