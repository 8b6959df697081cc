/**
 * The tag-subset index: given a message's tags T, find every subscription S
 * with S ⊆ T (SPEC §2). This is the hot path of every publish.
 *
 * Each distinct tag gets a small integer id while some subscription uses it.
 * Each subscription is a path of its tags in a trie, **rarest tag first**:
 * the order is fixed when the subscription is first added, by how many
 * subscriptions then used each tag (fewest first, ties by id), and kept with
 * the subscription so it is found again by its canonical key. Matching walks
 * the trie from the root through children whose tag the message carries,
 * so it visits nothing but paths that are themselves subsets of the message:
 *
 * - tags no subscription uses are dropped before the walk;
 * - a path never grows longer than the longest subscription;
 * - at each node it takes whichever is smaller, the node's children (each
 *   checked against the message by a stamp) or the message's tags (each
 *   looked up among the children), so a node with a million children costs
 *   at most one lookup per message tag, and a 64-tag message costs nothing
 *   near 2^64;
 * - a subscription that misses the message is left at its first, rarest tag
 *   — usually the one the message lacks — not walked down a long prefix;
 * - each node keeps a *sentinel*: a tag, not on its path, that every
 *   subscription below it carries (while one is known). A subtree whose
 *   sentinel the message lacks is skipped whole, which bounds the case rarest-
 *   first cannot: many subscriptions sharing one popular tag the message lacks.
 *
 * The matcher is exact: every subset case is found, whatever the mix of
 * subscriptions (the Go original missed some). See docs/architecture.md for
 * what is still possible to craft against it.
 */

interface TagEntry {
  readonly name: string;
  readonly id: number;
  /** Distinct subscriptions that use this tag; the id is released at zero. */
  subs: number;
  /** Equal to the matcher's `stamp` while the current message carries this tag. */
  seen: number;
  /** Equal to the matcher's `addStamp` while the subscription being added carries this tag. */
  adding: number;
}

class Node<S> {
  /** Children by tag id, created with the first one. */
  children: Map<number, Node<S>> | undefined;
  /** Subscriptions that end here or below. */
  weight = 0;
  /** The holder of the subscription that ends exactly here, while it has one holder. */
  holder: S | undefined;
  /** Its holders, once it has had more than one (most subscriptions never do: no Set for them). */
  holders: Set<S> | undefined;
  /** For the node that ends a subscription: its path, root first (so removal finds it again). */
  path: TagEntry[] | undefined;
  /**
   * A tag not on this node's path that every subscription ending below it
   * carries, or undefined when none is known. Cleared when a subscription
   * without it is added; never set again (a missing sentinel is always safe).
   */
  sentinel: TagEntry | undefined;

  constructor(readonly tag: TagEntry | undefined) {}
}

/** A tag-subset index from subscriptions to their holders (connections, nodes…). */
export class SubscriptionIndex<S> {
  private readonly tags = new Map<string, TagEntry>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly root = new Node<S>(undefined);
  /** The node ending each subscription, by its canonical key (ascending tag ids). */
  private readonly ends = new Map<string, Node<S>>();
  private stamp = 0;
  private addStamp = 0;
  /** Scratch list of the current message's known, distinct tags, reused across matches. */
  private readonly carried: TagEntry[] = [];

  /** Distinct subscriptions held by at least one holder. */
  get size(): number {
    return this.ends.size;
  }

  /**
   * Records that `holder` holds the subscription `tags`. Returns false when it
   * already did (subscribing twice to one set is one subscription).
   * `tags` must be non-empty.
   */
  add(tags: readonly string[], holder: S): boolean {
    const entries = this.entriesOf(tags, true);
    const key = keyOf(entries);
    let end = this.ends.get(key);
    if (end) {
      if (end.holders) {
        if (end.holders.has(holder)) return false;
        end.holders.add(holder);
      } else {
        if (end.holder === holder) return false;
        end.holders = new Set([end.holder!, holder]);
        end.holder = undefined;
      }
      return true;
    }
    // A new subscription: rarest tag first, as things stand now.
    entries.sort(rarestFirst);
    const last = entries.length - 1;
    const stamp = ++this.addStamp;
    for (const entry of entries) {
      entry.adding = stamp;
      entry.subs++;
    }
    let node = this.root;
    node.weight++;
    for (let i = 0; i <= last; i++) {
      const tag = entries[i]!;
      let child = node.children?.get(tag.id);
      if (!child) {
        child = new Node<S>(tag);
        if (i < last) child.sentinel = entries[last];
        (node.children ??= new Map()).set(tag.id, child);
      } else if (child.sentinel && (i === last || child.sentinel.adding !== stamp)) {
        child.sentinel = undefined;
      }
      child.weight++;
      node = child;
    }
    node.path = entries;
    node.holder = holder;
    this.ends.set(key, node);
    return true;
  }

  /** Forgets that `holder` holds `tags`. Returns false when it did not. */
  remove(tags: readonly string[], holder: S): boolean {
    const entries = this.entriesOf(tags, false);
    if (!entries) return false;
    const key = keyOf(entries);
    const end = this.ends.get(key);
    if (!end) return false;
    if (end.holders) {
      if (!end.holders.delete(holder)) return false;
      if (end.holders.size > 0) return true;
      end.holders = undefined;
    } else {
      if (end.holder !== holder) return false;
      end.holder = undefined;
    }
    this.ends.delete(key);
    const path = end.path!;
    end.path = undefined;
    // Down the path, lighter by one; the first node nobody passes through any more goes, with its branch.
    let node = this.root;
    node.weight--;
    for (const tag of path) {
      const child = node.children!.get(tag.id)!;
      if (--child.weight === 0) {
        node.children!.delete(tag.id);
        if (node.children!.size === 0) node.children = undefined;
        break;
      }
      node = child;
    }
    for (const tag of path) {
      if (--tag.subs === 0) {
        this.tags.delete(tag.name);
        this.freeIds.push(tag.id);
      }
    }
    return true;
  }

  /**
   * Calls `visit` with each holder of every subscription that is a subset of
   * `tags`. A holder of several matching subscriptions is visited once per
   * subscription; deduplicating is the caller's business (it can do it with
   * a stamp, without allocating).
   *
   * `visit` may remove subscriptions (a slow consumer closed mid-publish):
   * what is removed during the walk may or may not be visited still.
   */
  match(tags: readonly string[], visit: (holder: S) => void): void {
    const stamp = ++this.stamp;
    const carried = this.carried;
    carried.length = 0;
    for (let i = 0; i < tags.length; i++) {
      const entry = this.tags.get(tags[i]!);
      if (entry && entry.seen !== stamp) {
        entry.seen = stamp;
        carried.push(entry);
      }
    }
    if (carried.length > 0 && this.root.children) this.walk(this.root.children, 0, stamp, visit);
  }

  /** Enters every child the message can reach; `depth` is the children's depth minus one. */
  private walk(children: Map<number, Node<S>>, depth: number, stamp: number, visit: (holder: S) => void): void {
    const carried = this.carried;
    // Paths hold distinct tags, so at most the message's other tags lie below this depth.
    if (children.size <= carried.length - depth) {
      for (const child of children.values()) {
        if (child.tag!.seen === stamp) this.enter(child, depth, stamp, visit);
      }
    } else {
      for (let i = 0; i < carried.length; i++) {
        const child = children.get(carried[i]!.id);
        if (child) this.enter(child, depth, stamp, visit);
      }
    }
  }

  private enter(node: Node<S>, depth: number, stamp: number, visit: (holder: S) => void): void {
    // Everything below needs a tag the message lacks: skip the whole branch.
    if (node.sentinel && node.sentinel.seen !== stamp) return;
    if (node.holder !== undefined) visit(node.holder);
    else if (node.holders) for (const holder of node.holders) visit(holder);
    if (node.children && depth + 1 < this.carried.length) this.walk(node.children, depth + 1, stamp, visit);
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
        entry = { name, id: this.freeIds.pop() ?? this.nextId++, subs: 0, seen: 0, adding: 0 };
        this.tags.set(name, entry);
      }
      entries.push(entry);
    }
    entries.sort(byId);
    // Duplicate tags make one subscription: ["b","a","a"] is {a,b}.
    let n = 0;
    for (let i = 0; i < entries.length; i++) if (i === 0 || entries[i] !== entries[i - 1]) entries[n++] = entries[i]!;
    entries.length = n;
    return entries;
  }
}

/** A subscription's canonical key: its tag ids, ascending. */
function keyOf(entries: readonly TagEntry[]): string {
  let key = String(entries[0]!.id);
  for (let i = 1; i < entries.length; i++) key += ',' + entries[i]!.id;
  return key;
}

function byId(a: TagEntry, b: TagEntry): number {
  return a.id - b.id;
}

function rarestFirst(a: TagEntry, b: TagEntry): number {
  return a.subs - b.subs || a.id - b.id;
}
