/**
 * The mist client. One connection, over TCP or WebSocket, that
 * reconnects by itself and restores its auth and subscriptions.
 *
 * The protocol has no request ids, but a server answers one connection's
 * commands in order, so a reply belongs to the oldest request still waiting
 * for a reply of that command name. `publish` has no success reply: the
 * client follows each publish with a `ping`: the publish was accepted when
 * the `pong` comes with no error before it, and an error that comes belongs
 * to the oldest publish whose `pong` has not come yet.
 */
import { EventEmitter } from 'node:events';
import type { ConnectionOptions } from 'node:tls';
import { memberText } from '../core/json-text.ts';
import type { Message } from '../core/protocol.ts';
import { backoffDelay } from '../core/backoff.ts';
import { backoffOptions, type Reconnect, type ReconnectOptions } from './backoff.ts';
import { ClientErrorCodes, MistClientError, MistReplyError } from './errors.ts';
import { displayUrl, type Transport, type TransportHandlers, type TransportOptions } from './transport.ts';
import { TRANSPORTS } from './transports.ts';

export interface ConnectOptions {
  /** Sent on every (re)connection: with `auth` over TCP, as the `X-AUTH-TOKEN` header over WebSocket. */
  token?: string;
  /** Reconnect after a lost connection (not after a failed first one). Default true; `false` to not. */
  reconnect?: boolean | ReconnectOptions;
  /** Give up opening a connection after this long, in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Reject a request with no reply after this long, in ms; 0 for never. Default 30 000. */
  requestTimeoutMs?: number;
  /** Longest message accepted from the server, in bytes; past it the connection is dropped. Default 16 MiB. */
  maxMessageBytes?: number;
  /** TLS options for `tls://` and `wss://` URLs (e.g. `ca`). */
  tls?: ConnectionOptions;
  /**
   * The id of the last message this application handled, kept from an
   * earlier run: {@link MistClient.resume} and reconnects resume from it
   * until a newer message comes.
   */
  lastId?: string;
}

/** A message published to a subscription of this client. */
export interface Delivery {
  tags: string[];
  /** Parsed; a string for what the CLI and most clients publish. */
  data: unknown;
  /** The message's JSON text as received: `data` in it keeps digits that a parsed number loses. */
  json: string;
  /** Its id, when the server keeps history: what a client resumes from ({@link MistClient.lastId}). */
  id?: string;
}

/** The `who` reply's data (the original mist's fields may differ; unknown ones are kept). */
export interface WhoReply {
  /** Connections open now. */
  connections: number;
  /** Connections since the server started. */
  total: number;
  /** Distinct subscriptions. */
  subscriptions: number;
  [field: string]: unknown;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface MistClientEvents {
  /** A published message matching a subscription. */
  message: [Delivery];
  /** The connection was lost; requests waiting for a reply were rejected. */
  disconnect: [MistClientError];
  /** A reconnect attempt will be made in `delayMs`; `error` says why the connection or the last attempt failed. */
  reconnecting: [{ attempt: number; delayMs: number; error: Error }];
  /** Connected again, auth and every subscription restored, and what was missed meanwhile sent (see `gap`). */
  reconnect: [{ attempts: number }];
  /**
   * Messages may have been missed: the server could not resume from
   * `lastId` (its history did not reach back that far, it restarted, it
   * keeps no history). What it still had has been delivered.
   */
  gap: [{ lastId: string }];
  /** An error reply that answers no request of this client (e.g. to a publish sent with no one waiting). */
  serverError: [MistReplyError];
  /** The client is closed: by `close()`, or after `maxAttempts` failed reconnects. */
  close: [];
}

interface Pending {
  resolve(reply: Message): void;
  reject(err: Error): void;
  /** Set once the request timed out: its slot stays queued so that a late reply is not given to the next request. */
  settled: boolean;
  timer?: NodeJS.Timeout;
  /** On a ping: publishes numbered up to this one were written before it. */
  publishesBefore?: number;
  /** On a publish: its number. */
  seq?: number;
}

/** The identity of a subscription: its tags as a set. */
function subscriptionKey(tags: readonly string[]): string {
  return JSON.stringify([...new Set(tags)].sort());
}

/**
 * A connection to a mist server; made and opened by {@link connect}.
 *
 * @example
 * const client = await connect('ws://127.0.0.1:8888', { token: process.env.MIST_TOKEN });
 * client.on('reconnect', () => console.error('back, subscriptions restored'));
 * await client.subscribe(['deploy', 'app-42']);
 * for await (const { tags, data } of client) console.log(tags, data);
 */
export class MistClient extends EventEmitter<MistClientEvents> {
  readonly url: URL;
  private readonly options: Required<Omit<ConnectOptions, 'token' | 'tls' | 'reconnect' | 'lastId'>> & Pick<ConnectOptions, 'tls'>;
  private readonly backoff: Reconnect | undefined;
  private token: string | undefined;
  private transport: Transport | undefined;
  private currentState: ClientState = 'connecting';
  /** Requests waiting for a reply, by command name. */
  private readonly waiting = new Map<string, Pending[]>();
  private readonly publishes: Pending[] = [];
  private publishCount = 0;
  private readonly subscriptions = new Map<string, string[]>();
  private last: string | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private readonly streams = new Set<MessageStream>();
  private closing: Promise<void> | undefined;

  /** Use {@link connect}, which also opens the connection. */
  constructor(url: string | URL, options: ConnectOptions = {}) {
    super();
    this.url = new URL(url);
    this.token = options.token;
    this.last = options.lastId;
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      tls: options.tls,
    };
    const reconnect = options.reconnect ?? true;
    this.backoff = reconnect === false ? undefined : backoffOptions(reconnect === true ? {} : reconnect);
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The id of the last message received (or `lastId` given to connect): where a reconnect resumes from. */
  get lastId(): string | undefined {
    return this.last;
  }

  /** The subscriptions the client holds and restores after a reconnect. */
  get subscribed(): string[][] {
    return [...this.subscriptions.values()].map((tags) => [...tags]);
  }

  /** Opens the first connection: authenticates when a token was given. Rejects if either fails. */
  async open(): Promise<this> {
    if (this.currentState !== 'connecting' || this.transport) throw new Error('open() is called once, by connect()');
    try {
      await this.establish();
    } catch (err) {
      this.currentState = 'closed';
      await this.dropTransport();
      throw err;
    }
    this.currentState = 'open';
    return this;
  }

  // ---- basic commands ----

  /** Resolves once the server answered `pong`: every request sent before has been handled. */
  async ping(): Promise<void> {
    await this.request({ command: 'ping' });
  }

  /** Subscribes to a set of tags; restored after every reconnect until unsubscribed. */
  async subscribe(tags: readonly string[]): Promise<void> {
    await this.request({ command: 'subscribe', tags: [...tags] });
    this.subscriptions.set(subscriptionKey(tags), [...tags]);
  }

  /** Removes exactly the subscription to this set of tags. */
  async unsubscribe(tags: readonly string[]): Promise<void> {
    await this.request({ command: 'unsubscribe', tags: [...tags] });
    this.subscriptions.delete(subscriptionKey(tags));
  }

  /**
   * Publishes `data` (any JSON value) to `tags`. Resolves once the server
   * accepted it — a `ping` sent right after it came back with no error
   * before it — and rejects with the server's error otherwise. That costs a
   * ping per publish; publishes may still be pipelined (no need to await
   * one before sending the next).
   */
  publish(tags: readonly string[], data?: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!this.transport || this.currentState !== 'open') return reject(this.notConnected('publish'));
      const entry = this.pending(() => resolve(), reject, 'publish');
      entry.seq = ++this.publishCount;
      this.publishes.push(entry);
      const message: Message = data === undefined ? { command: 'publish', tags: [...tags] } : { command: 'publish', tags: [...tags], data };
      this.transport.send(JSON.stringify(message));
      // Its pong settles it; a failure of this ping fails the publish too, through lost() or its timer.
      this.send(this.transport, { command: 'ping' }).catch(() => {});
    });
  }

  /**
   * Asks the server for the messages missed since `id` (default
   * {@link lastId}) that match this client's subscriptions: they come as
   * messages, then this resolves `success`, or `gap` when some may be
   * missing. Reconnects do this by themselves; call it after subscribing
   * when resuming from an id kept by an earlier run.
   */
  async resume(id = this.last): Promise<'success' | 'gap'> {
    if (id === undefined) throw new TypeError('resume() needs an id: no message has been received yet');
    const reply = await this.request({ command: 'resume', data: id });
    return reply.data === 'success' ? 'success' : 'gap';
  }

  /** This connection's subscriptions, as the server holds them: each sorted, the list sorted. */
  async list(): Promise<string[][]> {
    return decodeTagSets(await this.request({ command: 'list' }));
  }

  /** Authenticates this connection; the token is then re-sent after every reconnect. */
  async auth(token: string): Promise<void> {
    await this.request({ command: 'auth', data: token });
    this.token = token;
  }

  // ---- admin commands (need the admin token) ----

  /** Creates `token` with these tags; fails if it exists. */
  async register(token: string, tags: readonly string[]): Promise<void> {
    await this.request({ command: 'register', tags: [...tags], data: token });
  }

  /** Deletes `token`. */
  async unregister(token: string): Promise<void> {
    await this.request({ command: 'unregister', data: token });
  }

  /** Adds tags to `token`. */
  async set(token: string, tags: readonly string[]): Promise<void> {
    await this.request({ command: 'set', tags: [...tags], data: token });
  }

  /** Removes tags from `token`. */
  async unset(token: string, tags: readonly string[]): Promise<void> {
    await this.request({ command: 'unset', tags: [...tags], data: token });
  }

  /** The tags of `token`, sorted. */
  async tags(token: string): Promise<string[]> {
    const reply = await this.request({ command: 'tags', data: token });
    return [...(reply.tags ?? [])];
  }

  /** Connections open now and since start, and distinct subscriptions, on the server's node. */
  async who(): Promise<WhoReply> {
    const reply = await this.request({ command: 'who' });
    const value: unknown = typeof reply.data === 'string' ? JSON.parse(reply.data) : reply.data;
    if (typeof value !== 'object' || value === null) {
      throw new MistClientError(ClientErrorCodes.REPLY, `unexpected "who" reply: ${JSON.stringify(reply)}`);
    }
    return value as WhoReply;
  }

  /** Every distinct subscription on the server's node. */
  async listall(): Promise<string[][]> {
    return decodeTagSets(await this.request({ command: 'listall' }));
  }

  /**
   * Sends any command that has a reply (e.g. a plugin's) and resolves with
   * the reply, or rejects with the server's error. Not for `publish`.
   */
  request(message: Message): Promise<Message> {
    if (message.command === 'publish') return Promise.reject(new TypeError('use publish() to publish'));
    if (!this.transport || this.currentState !== 'open') return Promise.reject(this.notConnected(message.command));
    return this.send(this.transport, message);
  }

  // ---- messages ----

  /**
   * Published messages, from now until the client closes. Each call gives
   * its own iterator; messages wait in it, unbounded, until read — break
   * out of the loop (or call `return()`) to stop collecting.
   */
  messages(): AsyncIterableIterator<Delivery> {
    const stream = new MessageStream(() => this.streams.delete(stream));
    if (this.currentState === 'closed') stream.end();
    else this.streams.add(stream);
    return stream;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Delivery> {
    return this.messages();
  }

  // ---- lifecycle ----

  /**
   * Closes the connection and stops reconnecting; requests still waiting
   * reject, message iterators end. Leaves no timer or socket behind.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasClosed = this.currentState === 'closed';
      this.currentState = 'closed';
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.failWaiting(new MistClientError(ClientErrorCodes.NOT_CONNECTED, 'the client was closed before the reply came'));
      await this.dropTransport();
      this.endStreams();
      if (!wasClosed) this.emit('close');
    })();
    return this.closing;
  }

  // ---- internals ----

  /** Opens a transport, authenticates, restores subscriptions. */
  private async establish(): Promise<void> {
    const options: TransportOptions = {
      token: this.token,
      connectTimeoutMs: this.options.connectTimeoutMs,
      maxMessageBytes: this.options.maxMessageBytes,
      tls: this.options.tls,
    };
    let transport: Transport | undefined;
    const handlers: TransportHandlers = {
      message: (json) => this.received(json),
      closed: (error) => this.lost(transport, error),
    };
    const open = TRANSPORTS[this.url.protocol];
    if (!open) {
      const known = Object.keys(TRANSPORTS).map((scheme) => scheme.slice(0, -1));
      throw new MistClientError(
        ClientErrorCodes.URL,
        `unsupported URL scheme "${this.url.protocol.slice(0, -1)}" in ${displayUrl(this.url)} (known: ${known.join(', ')})`,
      );
    }
    transport = await open(this.url, options, handlers);
    if (this.currentState === 'closed') {
      await transport.close();
      throw new MistClientError(ClientErrorCodes.NOT_CONNECTED, 'the client was closed');
    }
    this.transport = transport;
    // Node's WebSocket sent the token in its upgrade request (refused there with 401 when wrong); TCP and a browser have only `auth`.
    if (this.token !== undefined && !transport.sentToken) await this.send(transport, { command: 'auth', data: this.token });
    const restored = [...this.subscriptions.values()].map((tags) => this.send(transport, { command: 'subscribe', tags }));
    // Sent with the subscribes, not after their replies: the server handles them in one go, so nothing comes live in between.
    const from = restored.length > 0 ? this.last : undefined;
    const resumed = from === undefined ? undefined : this.send(transport, { command: 'resume', data: from });
    await Promise.all(restored);
    if (resumed) await this.resumed(resumed, from!);
  }

  /** Says `gap` when the server could not resume; a server without resume (an older one) cannot either. */
  private async resumed(reply: Promise<Message>, from: string): Promise<void> {
    let success: boolean;
    try {
      success = (await reply).data === 'success';
    } catch (err) {
      if (!(err instanceof MistReplyError)) throw err;
      success = false;
    }
    if (!success) this.emit('gap', { lastId: from });
  }

  /** Writes a request and waits for its reply. */
  private send(transport: Transport, message: Message): Promise<Message> {
    return new Promise((resolve, reject) => {
      const entry = this.pending(resolve, reject, message.command);
      if (message.command === 'ping') entry.publishesBefore = this.publishCount;
      let queue = this.waiting.get(message.command);
      if (!queue) this.waiting.set(message.command, (queue = []));
      queue.push(entry);
      transport.send(JSON.stringify(message));
    });
  }

  private pending(resolve: (reply: Message) => void, reject: (err: Error) => void, command: string): Pending {
    const entry: Pending = {
      settled: false,
      resolve: (reply) => {
        if (entry.settled) return;
        entry.settled = true;
        clearTimeout(entry.timer);
        resolve(reply);
      },
      reject: (err) => {
        if (entry.settled) return;
        entry.settled = true;
        clearTimeout(entry.timer);
        reject(err);
      },
    };
    const ms = this.options.requestTimeoutMs;
    if (ms > 0) {
      entry.timer = setTimeout(
        () => entry.reject(new MistClientError(ClientErrorCodes.TIMEOUT, `no reply to "${command}" within ${ms} ms`)),
        ms,
      );
    }
    return entry;
  }

  private received(json: string): void {
    let message: Message;
    try {
      const value = JSON.parse(json) as unknown;
      if (typeof value !== 'object' || value === null || typeof (value as Message).command !== 'string') return;
      message = value as Message;
    } catch {
      return; // Not ours to crash on: a server sends JSON.
    }
    const { command } = message;
    if (command === 'publish') {
      if (message.error === undefined) return this.deliver(message, json);
      const entry = this.publishes.shift();
      if (entry) entry.reject(new MistReplyError(message));
      else this.emit('serverError', new MistReplyError(message));
      return;
    }
    const entry = this.waiting.get(command)?.shift();
    if (!entry) {
      if (message.error !== undefined) this.emit('serverError', new MistReplyError(message));
      return;
    }
    if (entry.publishesBefore !== undefined) {
      // Every publish written before this ping has been handled, and none of those still queued failed.
      while (this.publishes.length > 0 && this.publishes[0]!.seq! <= entry.publishesBefore) this.publishes.shift()!.resolve(message);
    }
    if (message.error !== undefined) entry.reject(new MistReplyError(message));
    else entry.resolve(message);
  }

  private deliver(message: Message, json: string): void {
    const delivery: Delivery = { tags: [...(message.tags ?? [])], data: message.data, json };
    if (typeof message.id === 'string') this.last = delivery.id = message.id;
    for (const stream of this.streams) stream.push(delivery);
    this.emit('message', delivery);
  }

  /** The transport ended. */
  private lost(transport: Transport | undefined, error: Error | undefined): void {
    if (!transport || transport !== this.transport) return;
    this.transport = undefined;
    const err = new MistClientError(
      ClientErrorCodes.CONNECTION,
      `connection to ${displayUrl(this.url)} lost${error ? `: ${error.message}` : ''}`,
      { cause: error },
    );
    this.failWaiting(err);
    // While connecting, establish() fails with the requests it waits for and decides what comes next.
    if (this.currentState !== 'open') return;
    this.emit('disconnect', err);
    this.scheduleReconnect(err);
  }

  private scheduleReconnect(error: Error): void {
    if (!this.backoff || this.attempts >= this.backoff.maxAttempts) {
      void this.close();
      return;
    }
    this.currentState = 'reconnecting';
    const delayMs = backoffDelay(this.backoff, this.attempts++);
    this.emit('reconnecting', { attempt: this.attempts, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delayMs);
  }

  private async reconnect(): Promise<void> {
    try {
      await this.establish();
    } catch (err) {
      if (this.currentState === 'closed') return;
      await this.dropTransport();
      // close() may have come while the transport closed.
      if (this.isClosed()) return;
      this.scheduleReconnect(err as Error);
      return;
    }
    if (this.currentState === 'closed') return;
    const attempts = this.attempts;
    this.attempts = 0;
    this.currentState = 'open';
    this.emit('reconnect', { attempts });
  }

  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private async dropTransport(): Promise<void> {
    const transport = this.transport;
    this.transport = undefined;
    this.failWaiting(new MistClientError(ClientErrorCodes.CONNECTION, `connection to ${displayUrl(this.url)} closed`));
    await transport?.close();
  }

  private failWaiting(err: MistClientError): void {
    const entries = [...this.publishes, ...[...this.waiting.values()].flat()];
    this.publishes.length = 0;
    this.waiting.clear();
    for (const entry of entries) entry.reject(err);
  }

  private notConnected(command: string): MistClientError {
    const why = this.currentState === 'closed' ? 'the client is closed' : `not connected to ${displayUrl(this.url)} (${this.currentState})`;
    return new MistClientError(ClientErrorCodes.NOT_CONNECTED, `cannot send "${command}": ${why}`);
  }

  private endStreams(): void {
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }
}

/** `list`/`listall` data: a JSON-encoded array of tag arrays. */
function decodeTagSets(reply: Message): string[][] {
  const { data } = reply;
  const value: unknown = typeof data === 'string' ? JSON.parse(data) : data;
  if (!Array.isArray(value) || !value.every((set) => Array.isArray(set) && set.every((tag) => typeof tag === 'string'))) {
    throw new MistClientError(ClientErrorCodes.REPLY, `unexpected "${reply.command}" reply: ${JSON.stringify(reply)}`);
  }
  return value as string[][];
}

/** Raw `data` JSON text of a delivery, digits and all (see {@link Delivery.json}). */
export function dataText(delivery: Delivery): string | undefined {
  return memberText(delivery.json, 'data');
}

/** An async iterator over deliveries, fed by the client. */
class MessageStream implements AsyncIterableIterator<Delivery> {
  private readonly buffered: Delivery[] = [];
  private readonly readers: Array<(result: IteratorResult<Delivery>) => void> = [];
  private ended = false;

  constructor(private readonly detach: () => void) {}

  push(delivery: Delivery): void {
    const reader = this.readers.shift();
    if (reader) reader({ value: delivery, done: false });
    else this.buffered.push(delivery);
  }

  end(): void {
    this.ended = true;
    for (const reader of this.readers.splice(0)) reader({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Delivery>> {
    const value = this.buffered.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.readers.push(resolve));
  }

  return(): Promise<IteratorResult<Delivery>> {
    this.buffered.length = 0;
    this.detach();
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
