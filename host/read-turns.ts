/**
 * Shares each event-loop turn's reading among the connections that
 * read their own sockets (TCP, TLS, WebSocket: `context.shareReading`), so
 * that a few clients sending a lot cannot hold the loop.
 *
 * libuv gives every readable socket its turn in one poll phase, and reads
 * up to 32 × 64 KiB from each before moving on; replies wait for the phase
 * to end (they go out with the next flush). With 2,000 connections each
 * pouring in a megabyte, one phase read hundreds of megabytes, and a
 * bystander's ping waited a quarter of a second for its pong.
 *
 * So the server reads about {@link TURN_BYTES} a turn: once a turn has read
 * that much, a connection that has read more than {@link SHARE} of it is
 * paused and queued, and the queue is resumed in the turns that follow, a
 * turn's worth of connections at a time, first held first resumed. A
 * connection sending little (a ping, a publish) is never held.
 */
import type { Duplex } from 'node:stream';
import { Fifo } from '../core/fifo.ts';
import { currentTurn, SlicedWork } from '../core/slices.ts';

/** What a turn may read before heavy readers are held. */
export const TURN_BYTES = 1024 * 1024;
/** What one connection may read in a turn that is past {@link TURN_BYTES} before it is held. */
export const SHARE = 16 * 1024;
/** What Node reads from a socket at a time: a turn resumes {@link TURN_BYTES} / CHUNK held connections. */
export const CHUNK = 64 * 1024;

export class ReadTurns {
  /** Connections held for reading more than their share, since start. */
  holds = 0;
  /** Bytes read this turn, all connections together. */
  private readonly bytes = new TurnBytes();
  private readonly held = new Fifo<TurnReader>();
  /** Resumes held connections after each turn's reading, while any are held. */
  private readonly releases = new SlicedWork(() => this.release());

  /** The reading of one connection, to be told of each chunk it reads. */
  reader(connection: Pausable): TurnReader {
    return new TurnReader(this, connection);
  }

  /**
   * Counts what `socket` reads, and pauses `input` (the socket, or what
   * reads from it) while the socket has read more than its share. Returns
   * the connection's own hold on `input` (its session's: a command under
   * way, replies piling up): `input` reads only while neither holds it.
   */
  share(socket: Duplex, input: Pausable): Pausable {
    const holds = new InputHolds(input);
    const reader = this.reader({ pause: () => holds.set('turns', true), resume: () => holds.set('turns', false) });
    socket.on('data', (chunk: Buffer) => reader.read(chunk.length));
    socket.once('close', () => reader.close());
    return { pause: () => holds.set('session', true), resume: () => holds.set('session', false) };
  }

  /** Counts `bytes` read in the turn `turn`; true when that turn has read its fill. */
  count(bytes: number, turn = currentTurn()): boolean {
    return this.bytes.add(bytes, turn) > TURN_BYTES;
  }

  /** Queues a reader just held, to be resumed in a later turn. */
  queue(reader: TurnReader): void {
    this.holds++;
    this.held.push(reader);
    this.releases.schedule();
  }

  /**
   * After a turn's reading (the check phase follows the poll phase that
   * reads), resumes the connections held longest, about a turn's worth:
   * each reads a chunk or two (64 KiB each) before it is held again. Done
   * when none is left held; with every heavy reader held, nothing may be
   * read in the turns between, and the queue moves on all the same.
   */
  private release(): boolean {
    for (let room = TURN_BYTES; room > 0 && this.held.length > 0; ) {
      if (this.held.shift()!.release()) room -= CHUNK;
    }
    return this.held.length === 0;
  }
}

export class TurnReader {
  /** Bytes this connection read this turn. */
  private readonly bytes = new TurnBytes();
  private held = false;
  private closed = false;

  constructor(
    private readonly turns: ReadTurns,
    private readonly connection: Pausable,
  ) {}

  /** Counts a chunk just read; holds the connection if it has read more than its share of a full turn. */
  read(bytes: number): void {
    const turn = currentTurn();
    const mine = this.bytes.add(bytes, turn);
    const full = this.turns.count(bytes, turn);
    if (!full || mine <= SHARE || this.held || this.closed) return;
    this.held = true;
    this.connection.pause();
    this.turns.queue(this);
  }

  /** The connection has closed: it is not resumed when its turn comes. */
  close(): void {
    this.closed = true;
  }

  /** Resumes a held connection; false when it closed meanwhile. */
  release(): boolean {
    this.held = false;
    if (this.closed) return false;
    this.connection.resume();
    return true;
  }
}

/** A connection's input: a socket, or what reads from it (a WebSocket). */
export interface Pausable {
  /** Stops reading until {@link resume}. */
  pause(): void;
  /** Reads on (unless something else holds the input too). */
  resume(): void;
}

/** Bytes counted in one event-loop turn (`currentTurn`), from zero again in the next. */
class TurnBytes {
  private turn = -1;
  private bytes = 0;

  /** Adds `bytes` read in `turn`; returns the turn's total. */
  add(bytes: number, turn: number): number {
    if (turn !== this.turn) {
      this.turn = turn;
      this.bytes = 0;
    }
    return (this.bytes += bytes);
  }
}

/** A connection's input, paused while its session or the read turns hold it. */
class InputHolds {
  private readonly by = { session: false, turns: false };

  constructor(private readonly input: Pausable) {}

  set(holder: 'session' | 'turns', held: boolean): void {
    this.by[holder] = held;
    if (this.by.session || this.by.turns) this.input.pause();
    else this.input.resume();
  }
}
