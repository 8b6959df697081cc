/**
 * What plugins may use of the core: narrow views of the broker, the live
 * connections and the access rules, which the core classes implement. A
 * command handler gets the connection its request came from as a
 * {@link Connection}; a plugin's `register` gets the services on its `api`.
 * What they leave out (the broker's cluster hooks, a session's delivery
 * stamp and input queue) is the core's own business.
 */
import type { Identity } from './auth.ts';
import type { TokenTags } from './authenticator.ts';
import type { Message } from './protocol.ts';
import type { ResumeOutcome } from './replay.ts';
import type { ConnectionInfo } from './session.ts';

/** The connection a request came from, as a command handler sees it. */
export interface Connection {
  /** Unique on this server; for logs. */
  readonly id: number;
  readonly info: ConnectionInfo;
  /** Who it is; {@link AccessService.authenticate} changes it. */
  readonly identity: Identity;
  /** Its subscriptions by canonical key, each its sorted distinct tags. */
  readonly subscriptions: ReadonlyMap<string, readonly string[]>;
  /** False once it closed: an asynchronous handler may outlive its connection. */
  readonly isOpen: boolean;
  /** Sends a reply now, before whatever the handler returns. */
  reply(message: Message): void;
  /** Flushes what is queued for the client, then closes. */
  end(): void;
}

/**
 * A connection as the listener that opened it sees it
 * (`ListenerContext.open`): a {@link Connection} it feeds input to and tells
 * when the transport is gone. The session behind it (its queues, stamps and
 * timers) is the core's own.
 */
export interface ListenerConnection extends Connection {
  /** One frame of input: a line without its newline, or a WebSocket message. */
  receive(frame: string | Buffer): void;
  /** A frame over `maxMessageBytes` arrived: refuse it, after what came before, and close. */
  rejectOversized(): void;
  /** The input cannot be taken (a budget, a timeout): answer `error`, then close. */
  refuseInput(error: string): void;
  /** The client ended its side: answer what was read, then close. */
  inputEnded(): void;
  /** The transport is gone: forget the connection. */
  closed(): void;
}

/** Publishing and subscribing on this node (and, through the cluster, on the others). */
export interface BrokerService {
  /**
   * Delivers a message to every connection holding a subscription ⊆ `tags`,
   * once each, never to `from`. `data` is JSON text, forwarded as is
   * (`dataJson(request)` gives a request's); undefined for none. Returns
   * undefined once delivered on this node, or a promise while the delivery
   * waits behind another publish or goes on over several turns (a costly
   * match is sliced): a command that publishes returns it, so the
   * connection's next commands wait too.
   */
  publish(from: Connection | undefined, tags: readonly string[], data: string | undefined): Promise<void> | undefined;
  /** Subscribes `connection` to `tags` (non-empty); subscribing twice to a set is one subscription. A closed connection is ignored. */
  subscribe(connection: Connection, tags: readonly string[]): void;
  /** Removes exactly the subscription `tags`, if `connection` holds it. */
  unsubscribe(connection: Connection, tags: readonly string[]): void;
  /**
   * Sends `connection` the retained messages after the one whose id is `id`
   * that match its subscriptions, in id order, then tells whether history
   * reached back to `id` (`success`) or not (`gap`: messages may be
   * missing). Returns a promise while the replay goes on over several turns
   * (the connection's next commands wait for it). docs/protocol.md#resume.
   */
  resume(connection: Connection, id: string): ResumeOutcome | Promise<ResumeOutcome>;
  /** Distinct subscriptions held on this node. */
  readonly subscriptionCount: number;
  readonly stats: { readonly published: number; readonly delivered: number };
}

/** The connections open on this node. */
export interface ConnectionsService {
  /** Open now. */
  readonly count: number;
  /** Opened since start. */
  readonly total: number;
  /** The open connections; for admin commands, not for every message. */
  list(): Iterable<Connection>;
}

/**
 * Who a connection is and what a token may do. Changes go to the
 * authenticator's store and take effect on this node's live connections
 * at once: a connection loses the subscriptions its token no longer permits.
 * A refusal (an unknown token, an existing one, a store that is down)
 * rejects with a `CommandError` whose message is meant for the client.
 */
export interface AccessService {
  /**
   * Gives `connection` the identity `token` grants, dropping the
   * subscriptions that identity may not hold; false for a wrong token (the
   * connection stays as it was), after the failure delay. Rejects, with a
   * closing `CommandError`, when the connection's address has too many token
   * checks under way (docs/auth.md). Without an authenticator every token
   * grants the unrestricted user, at once.
   */
  authenticate(connection: Connection, token: string): Promise<boolean>;
  /** Creates `token` with `tags`; refused if it exists. */
  register(token: string, tags: readonly string[]): Promise<void>;
  /** Deletes `token`; its live connections lose every subscription. */
  unregister(token: string): Promise<void>;
  addTags(token: string, tags: readonly string[]): Promise<void>;
  /** Takes tags from `token`; its live connections lose the subscriptions that used them. */
  removeTags(token: string, tags: readonly string[]): Promise<void>;
  /** The token's tags as the store holds them now, sorted; undefined for an unknown token. */
  tagsOf(token: string): Promise<string[] | undefined>;
  /** Every token the store holds with its tags, sorted by token; refused by a store that keeps no tokens. */
  listTokens(): Promise<TokenTags[]>;
}
