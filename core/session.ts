/**
 * One client connection, whatever its transport: identity, subscriptions,
 * and the bounded outbound path.
 */
import type { Identity } from './auth.ts';
import { Fifo } from './fifo.ts';
import type { Limits } from './limits.ts';
import { Frame, INVALID_MESSAGE_COMMAND, type Message } from './protocol.ts';
import { currentTurn, MIN_SLICE_MS, SLICE_MS, turnInputSpent } from './slices.ts';

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
  /** Stops reading input until {@link resume}: backpressure on the client. */
  pause(): void;
  resume(): void;
  /** Calls `callback` once what is queued has been handed to the kernel. */
  whenDrained(callback: () => void): void;
}

/** What a listener says about a new connection. */
export interface ConnectionInfo {
  /** The listener's scheme: `tcp`, `ws`… */
  transport: string;
  /** The peer, for logs: `127.0.0.1:53412`. */
  remote: string;
  /**
   * The peer's IP address, which limits per address count by (core/guard.ts).
   * A transport without one (a Unix socket) leaves it out: its connections
   * then count by `remote`.
   */
  address?: string;
}

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

/** Input the server will not take, and why: the client is told, then the connection closes. */
class InputRefusal {
  constructor(readonly error: string) {}
}

/** Input events that must keep their place behind an asynchronous command. */
const INPUT_END = Symbol('input ended');
type InputEvent = string | Buffer | InputRefusal | typeof INPUT_END;

/** What a connection is told when the token it authenticated with expires, just before it is closed. */
const TOKEN_EXPIRED: Message = { command: 'auth', error: 'token expired; closing' };

/** The longest delay a Node timer takes (about 24.8 days); a later expiry takes several. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Session {
  /** Subscriptions by canonical key (see `canonicalTags`), each its sorted distinct tags. */
  readonly subscriptions = new Map<string, readonly string[]>();
  /** When each subscription was taken, as the history's last seq then: a message after it was sent live (core/replay.ts). */
  readonly subscribedAt = new Map<string, number>();
  /** Messages dropped because this connection's buffer was full. */
  dropped = 0;
  /** Closed by the `disconnect` slow-consumer policy. */
  disconnectedSlow = false;
  /** Subscribes refused for `maxSubscriptionsPerConnection`. */
  refusedSubscriptions = 0;
  /** Closed because the token it authenticated with expired. */
  expired = false;
  /** Set by the broker to the current publish; makes delivery once per connection. */
  stamp = 0;
  private open = true;
  private who!: Identity;
  /** Closes the session when its identity expires; replaced with the identity. */
  private expiry: NodeJS.Timeout | undefined;
  /** Input received while an asynchronous command ran, replies were backed up or this turn's slice was spent, in order. */
  private readonly backlog = new Fifo<InputEvent>();
  /** An asynchronous command is running. */
  private busy = false;
  /** Replies are over the buffer limit, waiting for the client to read them. */
  private full = false;
  /** This turn's slice of input is spent: the rest waits for the next turn. */
  private deferred = false;
  /** The turn (see `currentTurn`) this session's current slice of input began in, and when its timing began (-1: not yet). */
  private sliceTurn = -1;
  private sliceStarted = -1;
  /** Whether the sink was last told to pause. */
  private paused = false;
  /** The server is shutting down: nothing more is read; resolved once what was read is handled. */
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Closes the connection unless it authenticates first (see {@link awaitAuth}). */
  private authDeadline: NodeJS.Timeout | undefined;
  /** Deliveries held back while a replay is sent (see {@link holdDeliveries}), and their bytes. */
  private held: Frame[] | undefined;
  private heldBytes = 0;

  constructor(
    readonly id: number,
    readonly info: ConnectionInfo,
    private readonly sink: Sink,
    private readonly limits: Limits,
    private readonly input: InputHandler,
    private readonly stats: DeliveryStats,
    identity: Identity,
  ) {
    this.identity = identity;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Who the connection is; `auth` changes it. */
  get identity(): Identity {
    return this.who;
  }

  /** An identity that expires closes the session then, unless another replaced it before. */
  set identity(identity: Identity) {
    this.who = identity;
    clearTimeout(this.expiry);
    this.expiry = undefined;
    if (this.open && 'expiresAt' in identity && identity.expiresAt !== undefined) this.expireAt(identity.expiresAt);
  }

  /**
   * Queues a published message for the client unless that would take its
   * buffer over `maxBufferedBytes`; then the slow-consumer policy applies.
   * An empty buffer takes any message, so one larger than the limit still
   * reaches a client that keeps up. Never blocks and never throws: a slow
   * client must not slow anybody else.
   */
  deliver(frame: Frame): void {
    if (!this.open) return;
    const buffered = this.sink.bufferedBytes + this.heldBytes;
    if (buffered > 0 && buffered + frame.byteLength > this.limits.maxBufferedBytes) {
      if (this.limits.slowConsumerPolicy === 'disconnect') {
        this.stats.disconnectedSlow++;
        this.disconnectedSlow = true;
        this.abort();
      } else {
        this.dropped++;
        this.stats.dropped++;
      }
      return;
    }
    if (!this.held) return this.sink.write(frame);
    this.held.push(frame);
    this.heldBytes += frame.byteLength;
  }

  /**
   * Sends a replayed message (core/replay.ts): never dropped. Returns false
   * once the buffer is half full — the replay then waits for
   * {@link whenDrained} — so that live messages still find room.
   */
  sendReplayed(frame: Frame): boolean {
    if (this.open) this.sink.write(frame);
    return this.sink.bufferedBytes < this.limits.maxBufferedBytes / 2;
  }

  /** Calls `callback` once what is queued for the client has been handed to the kernel. */
  whenDrained(callback: () => void): void {
    this.sink.whenDrained(callback);
  }

  /**
   * From now until {@link releaseDeliveries}, live deliveries wait, in order
   * (counted against `maxBufferedBytes` as if queued): a replay spanning
   * several turns is sent before what was published meanwhile.
   */
  holdDeliveries(): void {
    this.held ??= [];
  }

  /** Sends what was held back, and delivers live again. */
  releaseDeliveries(): void {
    const held = this.held;
    this.held = undefined;
    this.heldBytes = 0;
    if (this.open && held) for (const frame of held) this.sink.write(frame);
  }

  /**
   * Sends a reply. Replies are never dropped: a client that does not read
   * them is stopped from sending more (its input is paused) until it does.
   */
  reply(message: Message): void {
    if (!this.open) return;
    this.sink.write(Frame.of(message));
    if (!this.full && this.sink.bufferedBytes > this.limits.maxBufferedBytes) {
      this.full = true;
      this.updateFlow();
      this.sink.whenDrained(() => {
        this.full = false;
        this.drainBacklog();
      });
    }
  }

  /** A frame (text, or UTF-8 bytes) arrived from the client. Input is handled strictly in order. */
  receive(frame: string | Buffer): void {
    this.accept(frame);
  }

  /**
   * The client sent a frame over `maxMessageBytes`. Once what came before it
   * is handled, say so and close: the rest of it cannot be told from the
   * next frame.
   */
  rejectOversized(): void {
    this.refuseInput(`message too long: over ${this.limits.maxMessageBytes} bytes`);
  }

  /**
   * The client's input cannot be taken any further (`error` says why: over
   * the server's input budget, a line left unfinished…). Once what came
   * before is handled, say so and close.
   */
  refuseInput(error: string): void {
    this.accept(new InputRefusal(error));
  }

  /**
   * The server is shutting down: read nothing more, and handle and answer
   * what was read, input held back behind an asynchronous command included.
   * Resolves once that is done, or once what is left waits on the client
   * reading its replies (a client that reads nothing must not hold up the
   * shutdown of the others), or the session is gone. The session stays
   * open, for deliveries, until {@link end}.
   */
  drain(): Promise<void> {
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.drained = { promise, resolve };
      this.updateFlow();
      this.settleDrain();
    }
    return this.drained.promise;
  }

  /** The client will send nothing more. Once what it sent is handled and answered, close. */
  inputEnded(): void {
    this.accept(INPUT_END);
  }

  /** Calls `expire` in `ms` unless the connection has authenticated or closed by then. */
  awaitAuth(ms: number, expire: () => void): void {
    this.authDeadline = setTimeout(expire, ms);
  }

  /** Takes the identity a right token granted, lifting the deadline of {@link awaitAuth}. */
  authenticateAs(identity: Identity): void {
    this.identity = identity;
    this.clearAuthDeadline();
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
    clearTimeout(this.expiry);
    this.backlog.clear();
    this.clearAuthDeadline();
    this.input.closed(this);
    this.settleDrain();
  }

  private clearAuthDeadline(): void {
    clearTimeout(this.authDeadline);
    this.authDeadline = undefined;
  }

  private expireAt(time: number): void {
    const delay = Math.min(Math.max(time - Date.now(), 0), MAX_TIMER_MS);
    this.expiry = setTimeout(() => (Date.now() >= time ? this.expire() : this.expireAt(time)), delay);
    // The connection's socket keeps the process alive; this timer need not.
    this.expiry.unref();
  }

  /** The token expired: say so, then close. */
  private expire(): void {
    this.expired = true;
    this.reply(TOKEN_EXPIRED);
    this.end();
  }

  /**
   * Handles `event` now, or queues it behind a running command, behind
   * replies the client has not read, or for the next turn once this turn's
   * slice of input is spent: pausing the transport stops later reads, but
   * the rest of a read already made must wait too, or one read of cheap
   * requests with large replies would queue without bound, and one read of
   * a hundred thousand subscribes would hold every other client up.
   */
  private accept(event: InputEvent): void {
    if (!this.open) return;
    if (this.busy || this.full || this.deferred) this.backlog.push(event);
    else if (this.sliceSpent()) {
      this.backlog.push(event);
      this.defer();
    } else this.process(event);
  }

  /** Handles queued input while nothing holds it back and this turn's slice lasts. */
  private drainBacklog(): void {
    while (this.open && !this.busy && !this.full && !this.deferred && this.backlog.length > 0) {
      if (this.sliceSpent()) this.defer();
      else this.process(this.backlog.shift()!);
    }
    this.updateFlow();
    this.settleDrain();
  }

  /** Resolves a drain once nothing that was read is left to handle but what waits on the client, or the session is gone. */
  private settleDrain(): void {
    if (this.drained && (!this.open || (!this.busy && (this.backlog.length === 0 || this.full)))) this.drained.resolve();
  }

  /**
   * Whether this session has had its slice of input this turn. The turn's
   * first frame is always handled and the slice is timed from its second,
   * so a session that sends a frame a turn, as most do, never reads the
   * clock (a read costs 0.1–0.2 µs here, a fair share of a small publish).
   */
  private sliceSpent(): boolean {
    const turn = currentTurn();
    if (turn !== this.sliceTurn) {
      this.sliceTurn = turn;
      this.sliceStarted = -1;
      return false;
    }
    const now = performance.now();
    // The turn's budget, all sessions together, is timed from the first of them to read the clock.
    const turnSpent = turnInputSpent(turn, now);
    if (this.sliceStarted < 0) {
      this.sliceStarted = now;
      return false;
    }
    const spent = now - this.sliceStarted;
    // Past the turn's budget, each session still has a short slice: a few frames sent together go together.
    return spent >= SLICE_MS || (turnSpent && spent >= MIN_SLICE_MS);
  }

  /** Holds input back until the next turn, after other connections' I/O. */
  private defer(): void {
    this.deferred = true;
    this.updateFlow();
    setImmediate(() => {
      this.deferred = false;
      this.drainBacklog();
    });
  }

  private process(event: InputEvent): void {
    if (event === INPUT_END) return this.end();
    if (event instanceof InputRefusal) {
      this.reply({ command: INVALID_MESSAGE_COMMAND, error: event.error });
      return this.end();
    }
    const pending = this.input.handle(this, event);
    if (!pending) return;
    this.busy = true;
    this.updateFlow();
    const done = (): void => {
      this.busy = false;
      this.drainBacklog();
    };
    // The dispatcher never rejects, but a rejection here must not go unhandled.
    pending.then(done, done);
  }

  /** Pauses the client's input while a command runs, its replies pile up or its input waits for the next turn, and for good once draining; resumes when none holds. */
  private updateFlow(): void {
    const paused = this.open && (this.busy || this.full || this.deferred || this.drained !== undefined);
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) this.sink.pause();
    else this.sink.resume();
  }
}
