/**
 * One client connection, whatever its transport: identity, subscriptions,
 * and the bounded outbound path of SPEC §7.
 */
import type { Limits } from './limits.ts';
import { Frame, type Message } from './protocol.ts';

/**
 * Where a session's outgoing bytes go. A listener implements it for its
 * transport; the core never touches a socket directly.
 */
export interface Sink {
  /** Queues one encoded message. */
  write(frame: Frame): void;
  /** Bytes queued and not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes at once, discarding what is queued. */
  destroy(): void;
  /** Stops reading input until {@link resume} (backpressure while a command is pending). */
  pause(): void;
  resume(): void;
}

/** What a listener says about a new connection. */
export interface ConnectionInfo {
  /** The listener's scheme: `tcp`, `ws`… */
  transport: string;
  /** The peer, for logs: `127.0.0.1:53412`. */
  remote: string;
}

/**
 * A connection's role decides which commands it may run: `admin` ones need
 * the admin role.
 */
export type Role = 'user' | 'admin';

/** Handles a session's input; the core's dispatcher. */
export interface InputHandler {
  /** Runs one frame's command; a returned promise holds back the session's next frames. */
  handle(session: Session, frame: string | Buffer): Promise<void> | void;
  /** The session is gone: drop its subscriptions. */
  closed(session: Session): void;
}

/** Counters the slow-consumer policy updates, shared by all sessions of a server. */
export interface DeliveryStats {
  dropped: number;
  disconnectedSlow: number;
}

export class Session {
  /** Subscriptions by canonical key (see `canonicalTags`), each its sorted distinct tags. */
  readonly subscriptions = new Map<string, readonly string[]>();
  role: Role = 'user';
  /** Messages dropped because this connection's buffer was full. */
  dropped = 0;
  /** Set by the broker to the current publish; makes delivery once per connection. */
  stamp = 0;
  private open = true;
  /** Frames received while an asynchronous command was running, in order. */
  private readonly backlog: Array<string | Buffer> = [];
  private busy = false;

  constructor(
    readonly id: number,
    readonly info: ConnectionInfo,
    private readonly sink: Sink,
    private readonly limits: Limits,
    private readonly input: InputHandler,
    private readonly stats: DeliveryStats,
  ) {}

  get isOpen(): boolean {
    return this.open;
  }

  /**
   * Queues a frame for the client unless that would take its buffer over
   * `maxBufferedBytes` (counted in UTF-16 units of the JSON, a close and
   * cheap stand-in for bytes); then the slow-consumer policy applies. Never blocks
   * and never throws: a slow client must not slow anybody else.
   */
  deliver(frame: Frame): void {
    if (!this.open) return;
    if (this.sink.bufferedBytes + frame.json.length > this.limits.maxBufferedBytes) {
      if (this.limits.slowConsumerPolicy === 'disconnect') {
        this.stats.disconnectedSlow++;
        this.abort();
      } else {
        this.dropped++;
        this.stats.dropped++;
      }
      return;
    }
    this.sink.write(frame);
  }

  /** Sends a reply (subject to the same buffer bound as deliveries). */
  reply(message: Message): void {
    this.deliver(Frame.of(message));
  }

  /** A frame (text, or UTF-8 bytes) arrived from the client. Frames are handled strictly in order. */
  receive(frame: string | Buffer): void {
    if (!this.open) return;
    if (this.busy) {
      this.backlog.push(frame);
      return;
    }
    const pending = this.input.handle(this, frame);
    if (pending) this.holdUntil(pending);
  }

  /**
   * The client sent a frame over `maxMessageBytes`: say so, then close
   * (the rest of the oversized frame cannot be told from the next one).
   */
  rejectOversized(command: string): void {
    this.reply({ command, error: `message too long: over ${this.limits.maxMessageBytes} bytes` });
    this.end();
  }

  /** Flushes what is queued for the client, then closes. */
  end(): void {
    if (!this.open) return;
    this.sink.end();
    this.closed();
  }

  /** Closes at once. */
  abort(): void {
    if (!this.open) return;
    this.sink.destroy();
    this.closed();
  }

  /** The transport is gone (or closing): forget the session. Idempotent. */
  closed(): void {
    if (!this.open) return;
    this.open = false;
    this.backlog.length = 0;
    this.input.closed(this);
  }

  private holdUntil(pending: Promise<void>): void {
    this.busy = true;
    this.sink.pause();
    const done = (): void => {
      this.busy = false;
      if (!this.open) return;
      while (!this.busy && this.backlog.length > 0) this.receive(this.backlog.shift()!);
      if (!this.busy) this.sink.resume();
    };
    // The dispatcher never rejects, but a rejection here must not go unhandled.
    pending.then(done, done);
  }
}
