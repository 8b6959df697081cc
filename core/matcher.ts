/**
 * The tag-subset index: given a message's tags T, find every subscription S
 * with S ⊆ T (SPEC §2). This is the hot path of every publish.
 *
 * Each distinct tag gets a small integer id while some subscription uses it,
 * and each subscription becomes the ascending list of its tags' ids. Those
 * lists form a trie. Matching walks the trie along the message's own (sorted,
 * known) tag ids only, so it visits nothing but prefixes of subscriptions
 * that are themselves subsets of the message:
 *
 * - tags no subscription uses are dropped before the walk;
 * - a path never grows longer than the longest subscription;
 * - at each node it takes whichever is smaller, the node's children or the
 *   message tags still ahead, so a node with a million children costs at
 *   most one lookup per message tag, and a 64-tag message costs nothing
 *   near 2^64.
 *
 * The cost is bounded by the trie nodes that are subsets of the message:
 * subscriptions that share no tag with it, or whose first (lowest-id) tags
 * are not in it, cost nothing. Subscriptions that share a long prefix with
 * the message and miss only on a later tag are still walked to the miss;
 * crafted in bulk, they make a publish slow (see docs/architecture.md).
 * The matcher is exact: every subset case is found, whatever the mix of
 * subscriptions (the Go original missed some).
 */

interface TagEntry {
  readonly name: string;
  readonly id: number;
  /** Trie nodes labelled with this tag; the id is released at zero. */
  nodes: number;
  /** Equal to the matcher's `stamp` while the current message carries this tag. */
  seen: number;
}

class Node<S> {
  /** Children by tag id; every child's id is larger than this node's. */
  readonly children = new Map<number, Node<S>>();
  /** Subscriptions (in the trie and below it) that pass through this node. */
  weight = 0;
  /** Holders of the subscription that ends exactly here, if any. */
  holders: Set<S> | undefined;

  constructor(readonly tag: TagEntry | undefined) {}

  get tagId(): number {
    return this.tag!.id;
  }
}

/** A tag-subset index from subscriptions to their holders (connections, nodes…). */
export class SubscriptionIndex<S> {
  private readonly tags = new Map<string, TagEntry>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly root = new Node<S>(undefined);
  private stamp = 0;
  /** Scratch array of the current message's tag ids, reused across matches. */
  private readonly ids: number[] = [];

  /** Distinct subscriptions held by at least one holder. */
  get size(): number {
    return this.root.weight;
  }

  /**
   * Records that `holder` holds the subscription `tags`. Returns false when it
   * already did (subscribing twice to one set is one subscription).
   * `tags` must be non-empty.
   */
  add(tags: readonly string[], holder: S): boolean {
    const path = this.entriesOf(tags, true);
    let node = this.root;
    for (const tag of path) {
      let child = node.children.get(tag.id);
      if (!child) {
        child = new Node<S>(tag);
        tag.nodes++;
        node.children.set(tag.id, child);
      }
      node = child;
    }
    node.holders ??= new Set();
    if (node.holders.has(holder)) return false;
    node.holders.add(holder);
    if (node.holders.size === 1) this.reweigh(path, +1);
    return true;
  }

  /** Forgets that `holder` holds `tags`. Returns false when it did not. */
  remove(tags: readonly string[], holder: S): boolean {
    const path = this.entriesOf(tags, false);
    if (!path) return false;
    let node: Node<S> | undefined = this.root;
    for (const tag of path) {
      node = node.children.get(tag.id);
      if (!node) return false;
    }
    if (!node.holders?.delete(holder)) return false;
    if (node.holders.size === 0) {
      node.holders = undefined;
      this.reweigh(path, -1);
    }
    return true;
  }

  /**
   * Calls `visit` with the holders of every subscription that is a subset of
   * `tags`. A holder of several matching subscriptions is visited once per
   * subscription; deduplicating is the caller's business (it can do it with
   * a stamp, without allocating).
   */
  match(tags: readonly string[], visit: (holders: ReadonlySet<S>) => void): void {
    const stamp = ++this.stamp;
    const ids = this.ids;
    ids.length = 0;
    for (const tag of tags) {
      const entry = this.tags.get(tag);
      if (entry && entry.seen !== stamp) {
        entry.seen = stamp;
        ids.push(entry.id);
      }
    }
    if (ids.length === 0) return;
    ids.sort(ascending);
    this.walk(this.root, 0, ids, visit);
  }

  private walk(node: Node<S>, from: number, ids: number[], visit: (holders: ReadonlySet<S>) => void): void {
    const ahead = ids.length - from;
    if (node.children.size <= ahead) {
      // Fewer children than message tags left: test each child for membership.
      for (const child of node.children.values()) {
        const at = indexOf(ids, child.tagId, from);
        if (at >= 0) this.enter(child, at + 1, ids, visit);
      }
    } else {
      for (let i = from; i < ids.length; i++) {
        const child = node.children.get(ids[i]!);
        if (child) this.enter(child, i + 1, ids, visit);
      }
    }
  }

  private enter(node: Node<S>, from: number, ids: number[], visit: (holders: ReadonlySet<S>) => void): void {
    if (node.holders) visit(node.holders);
    if (node.children.size > 0 && from < ids.length) this.walk(node, from, ids, visit);
  }

  /** The distinct entries of a tag set in ascending id order; with `create`, new tags get ids. */
  private entriesOf(tags: readonly string[], create: true): TagEntry[];
  private entriesOf(tags: readonly string[], create: false): TagEntry[] | undefined;
  private entriesOf(tags: readonly string[], create: boolean): TagEntry[] | undefined {
    const entries: TagEntry[] = [];
    for (const name of tags) {
      let entry = this.tags.get(name);
      if (!entry) {
        if (!create) return undefined;
        entry = { name, id: this.freeIds.pop() ?? this.nextId++, nodes: 0, seen: 0 };
        this.tags.set(name, entry);
      }
      entries.push(entry);
    }
    entries.sort(byId);
    // Duplicate tags make one subscription: ["b","a","a"] is {a,b}.
    return entries.filter((entry, i) => i === 0 || entry !== entries[i - 1]);
  }

  /**
   * Adds `delta` to the weight of every node on `path`, pruning the first
   * node no subscription passes through any more, with its whole branch.
   */
  private reweigh(path: readonly TagEntry[], delta: 1 | -1): void {
    this.root.weight += delta;
    let node = this.root;
    for (const tag of path) {
      const child = node.children.get(tag.id)!;
      child.weight += delta;
      if (child.weight === 0) {
        node.children.delete(tag.id);
        this.release(child);
        return;
      }
      node = child;
    }
  }

  /** Releases the tag ids of a pruned branch that no other node uses. */
  private release(node: Node<S>): void {
    const tag = node.tag!;
    if (--tag.nodes === 0) {
      this.tags.delete(tag.name);
      this.freeIds.push(tag.id);
    }
    for (const child of node.children.values()) this.release(child);
  }
}

function ascending(a: number, b: number): number {
  return a - b;
}

function byId(a: TagEntry, b: TagEntry): number {
  return a.id - b.id;
}

/** Binary search for `id` in the sorted `ids` from index `from`; -1 if absent. */
function indexOf(ids: readonly number[], id: number, from: number): number {
  let lo = from;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const value = ids[mid]!;
    if (value === id) return mid;
    if (value < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
