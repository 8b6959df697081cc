/**
 * One node of a mist cluster: what both backplanes share, so that
 * a backplane plugin is transport only (see core/backplane.ts).
 *
 * - **Node id**: random per server start, in every envelope and control
 *   message. A node ignores what it sent itself (Redis echoes a publish to
 *   the publisher's own subscription; NATS does not with `noEcho`, but a
 *   node must not rely on it).
 * - **Envelope** on `<prefix>.msg`: `m1\n<node>\n<seq>\n<tags JSON>\n<data JSON text>`.
 *   The data is the publisher's JSON text, forwarded verbatim; `seq` counts
 *   the envelopes a node sent, so a receiver can count the ones it missed.
 * - **No re-broadcast**: only publishes from local connections are handed
 *   to the backplane; a remote message is delivered with
 *   `broker.publishRemote`, which does not call the hook back.
 * - **Interest propagation** on `<prefix>.ctl`: each node announces its
 *   distinct subscriptions (a full snapshot when it joins or reconnects, or
 *   when a peer asks; batched deltas as they change; a heartbeat carrying
 *   its revision, so a peer that missed a delta notices and asks for a
 *   snapshot). Each node keeps every peer's subscriptions in one tag-subset
 *   index and forwards a local publish only when some peer holds a matching
 *   subscription. `?interest=off` forwards every publish instead.
 *
 * - **History** (when on, and the backplane has a durable stream: Redis
 *   Streams, NATS JetStream): every local publish is appended to the
 *   stream instead, and every node — this one too — delivers what it reads
 *   back, in the stream's order, with the stream's id. So ids are the same
 *   on every node, every node delivers in id order, and each node's history
 *   (core/history.ts) mirrors the stream's tail: a client resumes on any
 *   node. A publish the stream cannot take (it is down) is delivered here
 *   at once and sent the pub/sub way; a gap marker appended once the stream
 *   is back tells every node that messages may be missing there.
 *
 * Delivery across nodes is at-most-once without a stream: a publish made
 * while the backplane is down is dropped (and counted), and a subscription
 * made on one node is seen by the others one backplane hop later.
 */
import { randomBytes } from 'node:crypto';
import { backoffDelay, type Backoff } from './backoff.ts';
import type { Backplane, BackplaneContext, BackplaneFactory, BackplaneStream } from './backplane.ts';
import type { Broker, BrokerHooks } from './broker.ts';
import { ErrorCodes, MistError } from './errors.ts';
import { Fifo } from './fifo.ts';
import type { History } from './history.ts';
import type { Logger } from './logger.ts';
import { SubscriptionIndex } from './matcher.ts';
import type { Session } from './session.ts';
import { canonicalTags, tagSetKey } from './tags.ts';

export type BackplaneState = 'connecting' | 'up' | 'down' | 'closed';

/** Cluster settings, from the query of the `--cluster` URI. */
export interface ClusterOptions {
  /** `?prefix=` — names the channels (`<prefix>.msg`, `<prefix>.ctl`): nodes with one prefix form one cluster. Default `mist`. */
  prefix: string;
  /** `?interest=off` forwards every local publish, whether or not another node can deliver it. Default on. */
  interest: boolean;
  /** `?heartbeat=` in ms — how often a node says it is alive; a peer silent for 3 heartbeats is forgotten. Default 5000. */
  heartbeatMs: number;
}

export const DEFAULT_CLUSTER_OPTIONS: Readonly<ClusterOptions> = { prefix: 'mist', interest: true, heartbeatMs: 5000 };

/**
 * Backplane reconnects: 100 ms doubling to 5 s, plus up to 100 ms at random
 * so that nodes that lost the backplane together do not return in step.
 */
const RECONNECT: Backoff = { initialDelayMs: 100, maxDelayMs: 5000, factor: 2, jitter: 0, jitterMs: 100 };

/** A NATS subject (and Redis channel) prefix: dot-separated tokens of letters, digits, `_` and `-`. */
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Reads the cluster's own query parameters from a `--cluster` URI; throws MistError (key `cluster`). */
export function clusterOptions(url: URL): ClusterOptions {
  const options = { ...DEFAULT_CLUSTER_OPTIONS };
  const q = url.searchParams;
  const fail = (message: string): never => {
    throw new MistError(ErrorCodes.CONFIG, `invalid cluster URI: ${message}`, { key: 'cluster' });
  };
  const prefix = q.get('prefix');
  if (prefix !== null) {
    if (!PREFIX.test(prefix)) fail(`prefix "${prefix}" must be dot-separated words of letters, digits, "_" and "-"`);
    options.prefix = prefix;
  }
  const interest = q.get('interest');
  if (interest !== null) {
    if (interest !== 'on' && interest !== 'off') fail(`interest must be "on" or "off", not "${interest}"`);
    options.interest = interest === 'on';
  }
  const heartbeat = q.get('heartbeat');
  if (heartbeat !== null) {
    const ms = Number(heartbeat);
    if (!Number.isInteger(ms) || ms < 50) fail(`heartbeat must be a whole number of milliseconds ≥ 50, not "${heartbeat}"`);
    options.heartbeatMs = ms;
  }
  return options;
}

/** A message from another node, as carried on `<prefix>.msg`. */
export interface Envelope {
  node: string;
  seq: number;
  tags: string[];
  /** JSON text, or undefined when the publish had no data. */
  data: string | undefined;
}

const ENVELOPE_VERSION = 'm1';

/** A stream entry that is no message: `g1\n<node>`, messages may be missing here (that node delivered some the stream does not have). */
const GAP_MARKER = 'g1';

/**
 * Local publishes on their way through the stream, not read back yet, past
 * which publishers wait: the stream is slower than they are.
 */
const MAX_PENDING = 1000;

/** A local publish not back from the stream after this long never will be (the stream refused it): it is lost, a gap. */
const PENDING_TIMEOUT_MS = 10_000;

/** Encodes a publish for the backplane. Tags JSON and node ids hold no raw newline, so the data needs no escaping. */
export function encodeEnvelope(node: string, seq: number, tags: readonly string[], data: string | undefined): string {
  return `${ENVELOPE_VERSION}\n${node}\n${seq}\n${JSON.stringify(tags)}\n${data ?? ''}`;
}

/** Decodes an envelope, or returns undefined for anything malformed. */
export function decodeEnvelope(payload: string): Envelope | undefined {
  const a = payload.indexOf('\n');
  const b = payload.indexOf('\n', a + 1);
  const c = payload.indexOf('\n', b + 1);
  const d = payload.indexOf('\n', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0 || payload.slice(0, a) !== ENVELOPE_VERSION) return undefined;
  const seq = Number(payload.slice(b + 1, c));
  let tags: unknown;
  try {
    tags = JSON.parse(payload.slice(c + 1, d));
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(seq) || !isTagList(tags) || tags.length === 0) return undefined;
  const data = d + 1 < payload.length ? payload.slice(d + 1) : undefined;
  return { node: payload.slice(a + 1, b), seq, tags, data };
}

function isTagList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((tag) => typeof tag === 'string' && tag.length > 0);
}

/** Control messages on `<prefix>.ctl`, JSON. `rev` is the sender's interest revision. */
type Control =
  /** Joined or reconnected: peers answer with their snapshot. */
  | { op: 'hello'; node: string }
  /** Every subscription the sender holds; `all`: it wants every publish (`interest=off`). */
  | { op: 'snap'; node: string; rev: number; subs: string[][]; all?: boolean }
  | { op: 'delta'; node: string; rev: number; add: string[][]; remove: string[][] }
  | { op: 'beat'; node: string; rev: number }
  /** Asks node `of` for its snapshot. */
  | { op: 'sync'; node: string; of: string }
  | { op: 'bye'; node: string };

/** What this node knows of another. */
interface Peer {
  readonly id: string;
  /** Its subscriptions, by key. */
  readonly subs: Map<string, readonly string[]>;
  /** Wants every publish. */
  all: boolean;
  /** The revision its subscriptions are at here; -1 until a snapshot arrives, or after a missed delta. */
  rev: number;
  /** The last envelope `seq` received from it; 0 before the first. */
  seq: number;
  lastSeen: number;
  /** When this node last asked it for a snapshot. */
  askedAt: number;
}

/** Counters, for logs and `/metrics`. */
export interface ClusterStats {
  /** Local publishes handed to the backplane. */
  forwarded: number;
  /** Local publishes not sent because no other node has a matching subscription. */
  skipped: number;
  /** Local publishes some node could have used, dropped because the backplane was down. */
  dropped: number;
  /** Messages from other nodes delivered here. */
  received: number;
  /** Envelopes other nodes sent that never arrived here (gaps in their `seq`). */
  lost: number;
  /** This node's own envelopes echoed back by the backplane, ignored. */
  echoes: number;
  /** Malformed payloads ignored. */
  invalid: number;
  /** Times the backplane connection was lost. */
  disconnects: number;
  /** Times it came back. */
  reconnects: number;
  /** Local publishes the stream could not take, delivered here at once and sent the pub/sub way (history on). */
  unstreamed: number;
}

/** A snapshot of the cluster state: see {@link Cluster.status}. */
export interface ClusterStatus {
  node: string;
  /** The backplane URI, without password. */
  backplane: string;
  state: BackplaneState;
  /** When `state` last changed (ms since the epoch). */
  since: number;
  /** Other nodes heard from. */
  peers: number;
  /** Distinct subscriptions held on this node. */
  localSubscriptions: number;
  /** Distinct subscriptions held by other nodes, as announced. */
  remoteSubscriptions: number;
  stats: ClusterStats;
}

export class Cluster {
  /** Random per server start. */
  readonly node = randomBytes(8).toString('hex');
  readonly options: ClusterOptions;
  readonly stats: ClusterStats = {
    forwarded: 0,
    skipped: 0,
    dropped: 0,
    received: 0,
    lost: 0,
    echoes: 0,
    invalid: 0,
    disconnects: 0,
    reconnects: 0,
    unstreamed: 0,
  };
  private stateValue: BackplaneState = 'connecting';
  private since = Date.now();
  private backplane: Backplane | undefined;
  private readonly dataChannel: string;
  private readonly controlChannel: string;
  private seq = 0;

  /** This node's distinct subscriptions, with how many sessions hold each. */
  private readonly local = new Map<string, { tags: readonly string[]; holders: number }>();
  /** Bumped by every change to `local` announced to peers. */
  private rev = 0;
  private readonly added = new Map<string, readonly string[]>();
  private readonly removed = new Map<string, readonly string[]>();
  private flushing = false;

  private readonly peers = new Map<string, Peer>();
  /** Every peer's subscriptions, held by peer id. */
  private readonly interest = new SubscriptionIndex<string>();
  /** Peers that want every publish. */
  private allPeers = 0;
  private interested = false;
  private readonly markInterested = (): void => {
    this.interested = true;
  };
  private timer: NodeJS.Timeout | undefined;
  /** The transport said it connected before its factory returned. */
  private connectedEarly = false;

  /** The backplane's stream, when history goes through it. */
  private stream: BackplaneStream | undefined;
  /** Local publishes appended to the stream and not read back yet, oldest first, with their publishers. */
  private readonly pending = new Fifo<{ seq: number; publisher: Session | undefined; at: number }>();
  /** Publishers held back while `pending` is full, and what waits for it to empty. */
  private readonly waiting: Array<() => void> = [];
  private readonly settling: Array<() => void> = [];
  /** Messages this node delivered that the stream does not have: a gap marker is owed to it. */
  private owesGap = false;

  constructor(
    private readonly broker: Broker,
    private readonly logger: Logger,
    private readonly url: URL,
    /** The URI for logs and status (without password). */
    private readonly label: string,
    private readonly history?: History,
  ) {
    this.options = clusterOptions(url);
    this.dataChannel = `${this.options.prefix}.msg`;
    this.controlChannel = `${this.options.prefix}.ctl`;
  }

  get state(): BackplaneState {
    return this.stateValue;
  }

  /** Creates the backplane and hooks into the broker. Returns before the backplane is connected. */
  async start(factory: BackplaneFactory): Promise<void> {
    const context: BackplaneContext = {
      logger: this.logger,
      channels: [this.dataChannel, this.controlChannel],
      receive: (channel, payload) => this.receive(channel, payload),
      connected: () => this.connected(),
      disconnected: (reason) => this.disconnected(reason),
      reconnectDelay: (attempt) => backoffDelay(RECONNECT, Math.max(0, attempt - 1)),
    };
    const limits = this.history?.limits;
    if (limits) {
      context.stream = {
        name: `${this.options.prefix}.history`,
        limits,
        entry: (id, payload, time, live) => this.streamed(id, payload, time, live),
        missed: () => this.broker.publishRemote([], undefined, { id: '', time: Date.now(), gap: true }),
      };
    }
    // Started before the listeners, so no session holds a subscription yet.
    const hooks: BrokerHooks = {
      sequence: (publisher, tags, data) => this.sequence(publisher, tags, data),
      published: (tags, data) => this.published(tags, data),
      subscribed: (canonical) => this.subscribed(canonical),
      unsubscribed: (canonical) => this.unsubscribed(canonical),
    };
    this.broker.hooks = hooks;
    try {
      this.backplane = await factory(this.url, context);
    } catch (err) {
      this.broker.hooks = undefined;
      this.setState('closed');
      throw err;
    }
    this.stream = this.backplane.stream;
    if (limits && !this.stream) this.logger.warn({ url: this.label }, "this backplane has no stream: each node's history is its own, and a client resumes only on the node it left");
    this.timer = setInterval(() => this.tick(), this.options.heartbeatMs);
    this.timer.unref();
    this.logger.info({ node: this.node, url: this.label, prefix: this.options.prefix }, `joining cluster through ${this.label}`);
    if (this.connectedEarly) this.connected();
  }

  /** The state of this node's backplane and what it knows of the others; cheap, for `/metrics` and admin commands. */
  status(): ClusterStatus {
    return {
      node: this.node,
      backplane: this.label,
      state: this.stateValue,
      since: this.since,
      peers: this.peers.size,
      localSubscriptions: this.local.size,
      remoteSubscriptions: this.interest.size,
      stats: { ...this.stats },
    };
  }

  /**
   * Resolves once the local publishes on their way through the stream have
   * come back and been delivered here, or the backplane is down: a draining
   * server waits for it before it ends its connections.
   */
  settled(): Promise<void> {
    if (this.pending.length === 0 || this.stateValue !== 'up') return Promise.resolve();
    return new Promise((resolve) => this.settling.push(resolve));
  }

  /** Says goodbye to the peers and leaves the backplane. Idempotent. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    const wasUp = this.stateValue === 'up';
    if (wasUp) this.control({ op: 'bye', node: this.node });
    this.setState('closed');
    this.release(true);
    clearInterval(this.timer);
    this.broker.hooks = undefined;
    await this.backplane?.close();
    this.logger.info({ node: this.node }, 'left the cluster');
  }

  // ── local side ──────────────────────────────────────────────────────────

  /**
   * Appends a local publish to the stream; it is delivered here when read
   * back. False when there is no stream or it cannot take it: the broker
   * delivers it now, and `published` sends it the pub/sub way.
   */
  private sequence(publisher: Session | undefined, tags: readonly string[], data: string | undefined): boolean | Promise<void> {
    if (!this.stream) return false;
    this.payGap();
    const seq = this.seq + 1;
    if (this.stateValue !== 'up' || !this.stream.append(encodeEnvelope(this.node, seq, tags, data))) {
      this.stats.unstreamed++;
      this.owesGap = true;
      return false;
    }
    this.seq = seq;
    this.stats.forwarded++;
    this.pending.push({ seq, publisher, at: Date.now() });
    if (this.pending.length < MAX_PENDING) return true;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Appends the gap marker owed, if the stream takes it now. */
  private payGap(): void {
    if (this.owesGap && this.stateValue === 'up') this.owesGap = !this.stream!.append(`${GAP_MARKER}\n${this.node}`);
  }

  /** Lets held-back publishers go on once `pending` has room (or at once: `all`), and drains wait for nothing more. */
  private release(all = false): void {
    if (all || this.pending.length < MAX_PENDING) for (const resolve of this.waiting.splice(0)) resolve();
    if (all || this.pending.length === 0) for (const resolve of this.settling.splice(0)) resolve();
  }

  private published(tags: readonly string[], data: string | undefined): void {
    if (this.options.interest && this.allPeers === 0) {
      this.interested = false;
      this.interest.match(tags, this.markInterested);
      if (!this.interested) {
        this.stats.skipped++;
        return;
      }
    }
    if (this.stateValue !== 'up' || !this.backplane!.publish(this.dataChannel, encodeEnvelope(this.node, this.seq + 1, tags, data))) {
      this.stats.dropped++;
      return;
    }
    this.seq++;
    this.stats.forwarded++;
  }

  private subscribed(canonical: readonly string[]): void {
    if (!this.options.interest) return;
    const key = tagSetKey(canonical);
    const entry = this.local.get(key);
    if (entry) {
      entry.holders++;
      return;
    }
    this.local.set(key, { tags: canonical, holders: 1 });
    if (!this.removed.delete(key)) this.added.set(key, canonical);
    this.scheduleDelta();
  }

  private unsubscribed(canonical: readonly string[]): void {
    if (!this.options.interest) return;
    const key = tagSetKey(canonical);
    const entry = this.local.get(key);
    if (!entry || --entry.holders > 0) return;
    this.local.delete(key);
    if (!this.added.delete(key)) this.removed.set(key, canonical);
    this.scheduleDelta();
  }

  /** Announces subscription changes in one batch per turn of the event loop. */
  private scheduleDelta(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      if (this.added.size === 0 && this.removed.size === 0) return;
      const delta: Control = { op: 'delta', node: this.node, rev: ++this.rev, add: [...this.added.values()] as string[][], remove: [...this.removed.values()] as string[][] };
      this.added.clear();
      this.removed.clear();
      // While down it is lost: peers see the revision gap, and a reconnect sends a snapshot anyway.
      if (this.stateValue === 'up') this.control(delta);
    });
  }

  private snapshot(): Control {
    if (!this.options.interest) return { op: 'snap', node: this.node, rev: this.rev, subs: [], all: true };
    return { op: 'snap', node: this.node, rev: this.rev, subs: [...this.local.values()].map((entry) => entry.tags as string[]) };
  }

  private control(message: Control): void {
    this.backplane?.publish(this.controlChannel, JSON.stringify(message));
  }

  // ── backplane events ────────────────────────────────────────────────────

  private connected(): void {
    if (this.stateValue === 'closed' || this.stateValue === 'up') return;
    if (!this.backplane) {
      this.connectedEarly = true;
      return;
    }
    const wasDown = this.stateValue === 'down';
    const downMs = Date.now() - this.since;
    this.setState('up');
    if (wasDown) {
      this.stats.reconnects++;
      this.logger.info({ node: this.node, downMs }, 'backplane reconnected');
    } else {
      this.logger.info({ node: this.node }, 'backplane connected');
    }
    // Peers may have changed while this node could not hear them: ask everyone for a snapshot, and send ours.
    // Until they answer, the peers known before count as heard from now, so the next heartbeat does not drop them.
    const now = Date.now();
    for (const peer of this.peers.values()) peer.lastSeen = Math.max(peer.lastSeen, now);
    this.control({ op: 'hello', node: this.node });
    this.control(this.snapshot());
    this.payGap();
  }

  private disconnected(reason?: string): void {
    if (this.stateValue === 'closed') return;
    // What is on its way may come back after the reconnect, or not: meanwhile nobody waits for it.
    this.release(true);
    if (this.stateValue === 'up') {
      this.stats.disconnects++;
      this.logger.warn({ node: this.node, reason }, 'backplane lost: delivering locally only until it is back');
    } else if (this.stateValue === 'connecting') {
      this.logger.warn({ node: this.node, reason }, 'backplane unreachable: delivering locally only, retrying');
    }
    if (this.stateValue !== 'down') this.setState('down');
  }

  private receive(channel: string, payload: string): void {
    if (this.stateValue === 'closed') return;
    try {
      if (channel === this.dataChannel) this.receiveData(payload);
      else if (channel === this.controlChannel) this.receiveControl(payload);
    } catch (err) {
      // A bad payload or a bug must not take the transport's event loop down with it.
      this.stats.invalid++;
      this.logger.warn({ err, channel }, 'cluster message failed');
    }
  }

  /** An entry of the stream: a message (this node's own too) to deliver in the stream's order, or a gap marker. */
  private streamed(id: string, payload: string, time: number, live: boolean): void {
    if (this.stateValue === 'closed') return;
    if (payload.startsWith(`${GAP_MARKER}\n`)) return this.broker.publishRemote([], undefined, { id, time, gap: true });
    const envelope = decodeEnvelope(payload);
    if (!envelope) {
      this.stats.invalid++;
      return;
    }
    let publisher: Session | undefined;
    if (envelope.node === this.node) publisher = this.ownEntry(envelope.seq);
    else if (live) this.stats.received++;
    this.broker.publishRemote(envelope.tags, envelope.data, { id, time, publisher, retainOnly: !live });
  }

  /** This node's own publish `seq` came back: its publisher. An earlier one that never came back is lost to every node: a gap. */
  private ownEntry(seq: number): Session | undefined {
    let publisher: Session | undefined;
    for (let head = this.pending.peek(); head && head.seq <= seq; head = this.pending.peek()) {
      this.pending.shift();
      if (head.seq === seq) publisher = head.publisher;
      else this.owesGap = true;
    }
    this.release();
    return publisher;
  }

  private receiveData(payload: string): void {
    const envelope = decodeEnvelope(payload);
    if (!envelope) {
      this.stats.invalid++;
      this.logger.debug({ channel: this.dataChannel }, 'malformed envelope ignored');
      return;
    }
    if (envelope.node === this.node) {
      this.stats.echoes++;
      return;
    }
    const peer = this.peer(envelope.node);
    if (peer.seq > 0 && envelope.seq > peer.seq + 1) this.stats.lost += envelope.seq - peer.seq - 1;
    peer.seq = envelope.seq;
    this.stats.received++;
    this.broker.publishRemote(envelope.tags, envelope.data);
  }

  private receiveControl(payload: string): void {
    const message = JSON.parse(payload) as Control;
    if (typeof message?.node !== 'string' || message.node === this.node) return;
    const peer = this.peer(message.node);
    switch (message.op) {
      case 'hello':
        this.control(this.snapshot());
        break;
      case 'snap':
        this.replace(peer, message.subs, message.all === true);
        peer.rev = message.rev;
        break;
      case 'delta':
        for (const tags of message.add) this.add(peer, tags);
        for (const tags of message.remove) this.remove(peer, tags);
        if (peer.rev >= 0 && message.rev === peer.rev + 1) peer.rev = message.rev;
        else this.ask(peer);
        break;
      case 'beat':
        if (peer.rev !== message.rev) this.ask(peer);
        break;
      case 'sync':
        if (message.of === this.node) this.control(this.snapshot());
        break;
      case 'bye':
        this.forget(peer, 'left');
        break;
    }
  }

  // ── peers ───────────────────────────────────────────────────────────────

  private peer(id: string): Peer {
    let peer = this.peers.get(id);
    if (!peer) {
      peer = { id, subs: new Map(), all: false, rev: -1, seq: 0, lastSeen: 0, askedAt: 0 };
      this.peers.set(id, peer);
      this.logger.info({ node: this.node, peer: id }, 'peer joined');
    }
    peer.lastSeen = Date.now();
    return peer;
  }

  /** Asks a peer whose subscriptions may be stale for a snapshot, at most once a second. */
  private ask(peer: Peer): void {
    peer.rev = -1;
    const now = Date.now();
    if (now - peer.askedAt < Math.min(1000, this.options.heartbeatMs)) return;
    peer.askedAt = now;
    if (this.stateValue === 'up') this.control({ op: 'sync', node: this.node, of: peer.id });
  }

  private add(peer: Peer, tags: readonly string[]): void {
    if (!isTagList(tags) || tags.length === 0) return;
    const canonical = canonicalTags(tags);
    const key = tagSetKey(canonical);
    if (peer.subs.has(key)) return;
    peer.subs.set(key, canonical);
    this.interest.add(canonical, peer.id);
  }

  private remove(peer: Peer, tags: readonly string[]): void {
    if (!isTagList(tags) || tags.length === 0) return;
    const canonical = canonicalTags(tags);
    const key = tagSetKey(canonical);
    if (peer.subs.delete(key)) this.interest.remove(canonical, peer.id);
  }

  private replace(peer: Peer, subs: readonly string[][], all: boolean): void {
    if (peer.all !== all) {
      peer.all = all;
      this.allPeers += all ? 1 : -1;
    }
    const next = new Set<string>();
    for (const tags of subs) {
      if (!isTagList(tags) || tags.length === 0) continue;
      const canonical = canonicalTags(tags);
      const key = tagSetKey(canonical);
      next.add(key);
      if (!peer.subs.has(key)) {
        peer.subs.set(key, canonical);
        this.interest.add(canonical, peer.id);
      }
    }
    for (const [key, canonical] of peer.subs) {
      if (next.has(key)) continue;
      peer.subs.delete(key);
      this.interest.remove(canonical, peer.id);
    }
  }

  private forget(peer: Peer, why: string): void {
    for (const canonical of peer.subs.values()) this.interest.remove(canonical, peer.id);
    peer.subs.clear();
    if (peer.all) this.allPeers--;
    this.peers.delete(peer.id);
    this.logger.info({ node: this.node, peer: peer.id }, `peer ${why}`);
  }

  /** Heartbeat: tells peers this node's revision, forgets peers silent for 3 heartbeats, and gives up on publishes the stream lost. */
  private tick(): void {
    if (this.stateValue !== 'up') return;
    this.control({ op: 'beat', node: this.node, rev: this.rev });
    const lostBefore = Date.now() - PENDING_TIMEOUT_MS;
    for (let head = this.pending.peek(); head && head.at < lostBefore; head = this.pending.peek()) {
      this.pending.shift();
      this.owesGap = true;
      this.release();
    }
    const silentSince = Date.now() - 3 * this.options.heartbeatMs;
    for (const peer of [...this.peers.values()]) if (peer.lastSeen < silentSince) this.forget(peer, 'went silent');
  }

  private setState(state: BackplaneState): void {
    this.stateValue = state;
    this.since = Date.now();
  }
}
