/**
 * The live connections of a server: opens a session for each connection a
 * listener accepts, feeds its input to the dispatcher and sends back what
 * came of it, and forgets it (and its subscriptions) when it closes.
 */
import { inject, injectable } from 'tsyringe';
import type { Auth, Identity } from './auth.ts';
import type { Broker } from './broker.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { AuthGuard } from './guard.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { RequestFields } from './protocol.ts';
import { replyOf, type CommandResult } from './result.ts';
import type { ConnectionsService } from './services.ts';
import { Session, type ConnectionInfo, type DeliveryStats, type InputHandler, type Sink } from './session.ts';
import { TOKENS } from './tokens.ts';

@injectable()
export class Connections implements InputHandler, ConnectionsService {
  private readonly live = new Set<Session>();
  /** Open connections by `ConnectionInfo.transport`; a transport seen once stays listed, at 0. */
  private readonly perTransport = new Map<string, number>();
  private nextId = 1;
  /** Connections opened since start. */
  total = 0;
  /** Slow-consumer counters, summed over every session. */
  readonly delivery: DeliveryStats = { dropped: 0, disconnectedSlow: 0 };

  constructor(
    @inject(TOKENS.Broker) private readonly broker: Broker,
    @inject(TOKENS.Dispatcher) private readonly dispatcher: Dispatcher,
    @inject(TOKENS.Limits) private readonly limits: Limits,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Auth) private readonly auth: Auth,
    @inject(TOKENS.Guard) private readonly guard: AuthGuard,
  ) {}

  /** Connections open now. */
  get count(): number {
    return this.live.size;
  }

  /** Connections open now, by transport (`tcp`, `ws`, `sse`…), for metrics. */
  byTransport(): ReadonlyMap<string, number> {
    return this.perTransport;
  }

  /**
   * Opens a session. `identity` is for transports that authenticate before
   * the connection exists (a WebSocket's `X-AUTH-TOKEN`); others start
   * unauthenticated when an authenticator is configured, and are closed
   * unless they authenticate within `authTimeoutMs`.
   */
  open(sink: Sink, info: ConnectionInfo, identity: Identity = this.auth.initial): Session {
    const session = new Session(this.nextId++, info, sink, this.limits, this, this.delivery, identity);
    this.live.add(session);
    this.total++;
    this.perTransport.set(info.transport, (this.perTransport.get(info.transport) ?? 0) + 1);
    if (identity.role === 'anonymous') this.guard.watch(session);
    this.logger.debug({ session: session.id, ...info }, 'connection opened');
    return session;
  }

  /** The open sessions, for admin commands (`listall`, revoking permissions); not for the hot path. */
  list(): IterableIterator<Session> {
    return this.live.values();
  }

  handle(session: Session, frame: string | Buffer): Promise<void> | void {
    const result = this.dispatcher.dispatch(session, frame);
    if (result instanceof Promise) return result.then((settled) => answer(session, settled));
    answer(session, result);
  }

  /**
   * Runs one request for `session` and resolves to its result, sending
   * nothing: for a transport whose requests are not frames of its input
   * (SSE's subscriptions), which answers in its own terms.
   */
  async run(session: Session, request: RequestFields): Promise<CommandResult> {
    return this.dispatcher.execute(session, request);
  }

  /** Runs one request as a connection of its own (an HTTP publish): a session opened for it, closed once it is done. */
  async runOnce(info: ConnectionInfo, request: RequestFields, identity?: Identity): Promise<CommandResult> {
    const session = this.open(DISCARD, info, identity);
    try {
      return await this.dispatcher.execute(session, request);
    } finally {
      session.closed();
    }
  }

  /**
   * Shutting down (the listeners no longer accept): every connection stops
   * reading and handles what it has read; once all have, so that the
   * publishes among it still reach every subscriber (`delivered`: once
   * those the cluster's stream carries are back), each is ended — what
   * is queued for it flushed, then closed. Resolves once all are ended.
   */
  async drain(delivered?: () => Promise<void> | undefined): Promise<void> {
    const sessions = [...this.live];
    await Promise.all(sessions.map((session) => session.drain()));
    await delivered?.();
    for (const session of sessions) session.end();
  }

  closed(session: Session): void {
    if (!this.live.delete(session)) return;
    this.perTransport.set(session.info.transport, this.perTransport.get(session.info.transport)! - 1);
    this.broker.forget(session);
    // Operators need to see slow consumers without turning on debug logs.
    if (session.dropped > 0) {
      this.logger.warn({ session: session.id, ...session.info, dropped: session.dropped }, 'slow consumer: messages were dropped');
    } else if (session.disconnectedSlow) {
      this.logger.warn({ session: session.id, ...session.info }, 'slow consumer: disconnected');
    }
    if (session.expired) this.logger.debug({ session: session.id, ...session.info }, 'token expired: connection closed');
    this.logger.debug({ session: session.id, dropped: session.dropped }, 'connection closed');
  }
}

/** Sends a line transport what came of a frame, as the wire protocol has it. */
function answer(session: Session, result: CommandResult): void {
  const reply = replyOf(result);
  if (reply) session.reply(reply);
  if (!result.ok && result.close) session.end();
}

/** The output of a session that lives for one request: its result is returned, so nothing is written. */
const DISCARD: Sink = {
  write() {},
  bufferedBytes: 0,
  end() {},
  destroy() {},
  pause() {},
  resume() {},
  whenDrained: (callback) => queueMicrotask(callback),
};
