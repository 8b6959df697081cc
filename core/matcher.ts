/**
 * The tag-subset index: given a message's tags T, find every subscription S
 * with S ⊆ T. This is the hot path of every publish.
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
 *
 * A match can be run in slices: {@link SubscriptionIndex.start} walks within
 * a budget of steps and, when the budget runs out, returns a {@link Walk}
 * that keeps the nodes it has yet to enter; {@link SubscriptionIndex.resume}
 * takes them up in a later turn. Several walks may be paused at once, and
 * others run whole in between: so a cheap match need not wait for a costly
 * one. The walk is the same recursive one either way, so a match that fits
 * its budget (nearly every one) pays one subtraction per node for it.
 *
 * Adding and removing allocate only what a new subscription keeps (its nodes
 * and its path): tags are deduplicated by a stamp rather than sorted, a
 * subscription is found again by an order-free numeric hash of its tag ids
 * rather than a string key, and a node keeps its first few children in a
 * small array — most nodes never have more, and a `Map` costs many times an
 * array to create.
 */

interface TagEntry {
  readonly name: string;
  readonly id: number;
  /** Mixed bits of `id`: a subscription's hash is the sum of its tags'. */
  readonly hash: number;
  /** Distinct subscriptions that use this tag; the id is released at zero. */
  subs: number;
  /** Equal to the matcher's `stamp` while the current message carries this tag. */
  seen: number;
  /** Equal to the matcher's `mark` while the subscription being added or removed carries this tag. */
  marked: number;
}

/** Children kept in a node's array before it moves them to a `Map`. */
const FEW_CHILDREN = 8;

/** The budget of each slice of a whole match: larger than any walk needs in practice, and a small integer, so V8 keeps `budget` an integer field. */
const WHOLE = 0x3fffffff;

class Node<S> {
  /** Its children while it has at most {@link FEW_CHILDREN}, unordered. */
  few: Node<S>[] | undefined;
  /** Its children by tag id once it has had more. */
  many: Map<number, Node<S>> | undefined;
  /** Subscriptions that end here or below. */
  weight = 0;
  /** The holder of the subscription that ends exactly here, while it has one holder. */
  holder: S | undefined;
  /** Its holders, once it has had more than one (most subscriptions never do: no Set for them). */
  holders: Set<S> | undefined;
  /** For the node that ends a subscription: its path, root first (so removal finds it again). */
  path: TagEntry[] | undefined;
  /** For the node that ends a subscription: the next one whose tags hash alike. */
  nextEnd: Node<S> | undefined;
  /**
   * A tag not on this node's path that every subscription ending below it
   * carries, or undefined when none is known. Cleared when a subscription
   * without it is added; never set again (a missing sentinel is always safe).
   */
  sentinel: TagEntry | undefined;
  /** Its tag's id, kept here so finding a child reads no other object (measured: 5–7% off add/remove at 1M). */
  readonly id: number;

  constructor(readonly tag: TagEntry | undefined) {
    this.id = tag ? tag.id : -1;
  }

  child(id: number): Node<S> | undefined {
    const few = this.few;
    if (few) {
      for (let i = 0; i < few.length; i++) if (few[i]!.id === id) return few[i];
      return undefined;
    }
    return this.many?.get(id);
  }

  attach(child: Node<S>): void {
    const few = this.few;
    if (this.many) this.many.set(child.id, child);
    else if (!few) this.few = [child];
    else if (few.length < FEW_CHILDREN) few.push(child);
    else {
      this.many = new Map();
      for (const node of few) this.many.set(node.id, node);
      this.many.set(child.id, child);
      this.few = undefined;
    }
  }

  detach(child: Node<S>): void {
    const few = this.few;
    if (few) {
      const at = few.indexOf(child);
      if (at < 0) return;
      few[at] = few[few.length - 1]!;
      few.pop();
      if (few.length === 0) this.few = undefined;
    } else if (this.many?.get(child.id) === child) {
      this.many.delete(child.id);
      if (this.many.size === 0) this.many = undefined;
    }
  }
}

/**
 * A match under way: its message's tags and the nodes it has reached but
 * not entered. Handed out by {@link SubscriptionIndex.start} when the match
 * pauses; only the index reads it.
 */
export class Walk<S> {
  /** Marks the message's tags (`TagEntry.seen`) while this walk runs. */
  stamp = 0;
  /** Orders walks by when they started: a tag freed after this walk started keeps its id until the walk ends. */
  serial = 0;
  /** The message's known, distinct tags. */
  readonly carried: TagEntry[] = [];
  /** Nodes reached but not entered, and their depths: the next slice starts from them. */
  readonly pending: Node<S>[] = [];
  readonly pendingDepths: number[] = [];
}

/** A tag freed while walks that may still look its id up were under way, and the last walk started by then. */
interface Freed {
  readonly tag: TagEntry;
  readonly serial: number;
}

/** A tag-subset index from subscriptions to their holders (connections, nodes…). */
export class SubscriptionIndex<S> {
  private readonly tags = new Map<string, TagEntry>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly root = new Node<S>(undefined);
  /** The node ending each subscription, by the hash of its tag ids (alike hashes chained through `nextEnd`). */
  private readonly ends = new Map<number, Node<S>>();
  private count = 0;
  private stamp = 0;
  /** The stamp the tags' `seen` marks are for: the walk that ran last. */
  private seenFor = 0;
  private serial = 0;
  private mark = 0;
  /** The walk a match starts with; handed out when it pauses, and replaced. */
  private spare = new Walk<S>();
  /** The walk running now: its message's tags and its pending nodes. */
  private carried: TagEntry[] = [];
  private pending: Node<S>[] = [];
  private pendingDepths: number[] = [];
  /** Scratch list of the distinct tags of the subscription being added or removed. */
  private readonly marking: TagEntry[] = [];
  /** A walk is running (within `start` or `resume`): removals leave emptied branches attached until it returns. */
  private running = false;
  /** Walks paused between slices. */
  private readonly paused = new Set<Walk<S>>();
  /** Steps the current slice of the match may still take; below zero, nodes reached are left for the next slice. */
  private budget = 0;
  /** Branches emptied while a walk ran, each after its parent, to detach when it returns. */
  private readonly emptied: Node<S>[] = [];
  /** Tags freed while walks were under way, oldest first, to release once those walks are over (see `settle`). */
  private readonly freed: Freed[] = [];

  /** Distinct subscriptions held by at least one holder. */
  get size(): number {
    return this.count;
  }

  /**
   * Records that `holder` holds the subscription `tags`. Returns false when it
   * already did (subscribing twice to one set is one subscription).
   * `tags` must be non-empty.
   */
  add(tags: readonly string[], holder: S): boolean {
    const hash = this.markTags(tags, true);
    const end = this.endOf(hash);
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
    const path = rarestFirst(this.marking);
    const last = path.length - 1;
    for (const entry of path) entry.subs++;
    let node = this.root;
    node.weight++;
    for (let i = 0; i <= last; i++) {
      const tag = path[i]!;
      let child = node.child(tag.id);
      if (!child || child.weight === 0) {
        // New, or emptied by a removal during a match and not detached yet: nothing lives below it either way.
        if (!child) node.attach((child = new Node<S>(tag)));
        else child.few = child.many = undefined;
        child.sentinel = i < last ? path[last] : undefined;
      } else if (child.sentinel && (i === last || child.sentinel.marked !== this.mark)) {
        child.sentinel = undefined;
      }
      child.weight++;
      node = child;
    }
    node.path = path;
    node.holder = holder;
    node.nextEnd = this.ends.get(hash);
    this.ends.set(hash, node);
    this.count++;
    return true;
  }

  /** Forgets that `holder` holds `tags`. Returns false when it did not. */
  remove(tags: readonly string[], holder: S): boolean {
    const hash = this.markTags(tags, false);
    if (hash < 0) return false;
    const end = this.endOf(hash);
    if (!end) return false;
    if (end.holders) {
      if (!end.holders.delete(holder)) return false;
      if (end.holders.size > 0) return true;
      end.holders = undefined;
    } else {
      if (end.holder !== holder) return false;
      end.holder = undefined;
    }
    this.unlinkEnd(end, hash);
    this.count--;
    const path = end.path!;
    end.path = undefined;
    // Down the path, lighter by one; the first node nobody passes through any more goes, with its branch.
    let node = this.root;
    node.weight--;
    for (const tag of path) {
      const child = node.child(tag.id)!;
      if (--child.weight === 0) {
        if (this.running) this.emptied.push(node, child);
        else node.detach(child);
        break;
      }
      node = child;
    }
    for (const tag of path) {
      if (--tag.subs === 0) {
        this.tags.delete(tag.name);
        if (this.running || this.paused.size > 0) this.freed.push({ tag, serial: this.serial });
        else this.freeIds.push(tag.id);
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
   * `visit` may remove subscriptions (a slow consumer closed mid-publish)
   * or add some: what is removed or added during the walk may or may not be
   * visited, and everything else is visited. It may not start another match
   * on this index: the two would share the message's stamps, and the outer
   * one would miss subscriptions; that throws.
   */
  match(tags: readonly string[], visit: (holder: S) => void): void {
    const walk = this.start(tags, visit, WHOLE);
    if (walk) this.resume(walk, visit, WHOLE);
  }

  /**
   * Starts matching `tags` as {@link match} does, and stops once it has
   * taken `steps` steps (a step is a child or a message tag examined, a
   * tenth of a microsecond or so). Returns undefined when the match is
   * done; else the paused walk, to be taken up with {@link resume}. Other
   * matches may start and run while it is paused, and subscriptions may be
   * added and removed between slices as by a visitor: those may or may not
   * be visited, every other matching one is, once. A visitor may not start
   * a match (that throws).
   */
  start(tags: readonly string[], visit: (holder: S) => void, steps: number): Walk<S> | undefined {
    if (this.running) throw new Error('SubscriptionIndex.match: a visitor may not start another match on the same index');
    const walk = this.spare;
    const stamp = (walk.stamp = ++this.stamp);
    walk.serial = ++this.serial;
    this.seenFor = stamp;
    const carried = walk.carried;
    carried.length = 0;
    for (let i = 0; i < tags.length; i++) {
      const entry = this.tags.get(tags[i]!);
      if (entry && entry.seen !== stamp) {
        entry.seen = stamp;
        carried.push(entry);
      }
    }
    if (carried.length === 0) return undefined;
    if (!this.run(walk, visit, steps, true)) return undefined;
    this.spare = new Walk<S>();
    this.paused.add(walk);
    return walk;
  }

  /** Takes up a paused walk for another `steps` steps. Returns true when it is done. */
  resume(walk: Walk<S>, visit: (holder: S) => void, steps: number): boolean {
    if (this.running) throw new Error('SubscriptionIndex.resume: a visitor may not resume a match');
    if (!this.paused.has(walk)) throw new Error('SubscriptionIndex.resume: that match is not paused');
    // Other walks have marked their own tags since: mark this one's again (a message has at most a few dozen).
    if (this.seenFor !== walk.stamp) {
      for (const entry of walk.carried) entry.seen = walk.stamp;
      this.seenFor = walk.stamp;
    }
    if (this.run(walk, visit, steps, false)) return false;
    this.paused.delete(walk);
    this.settle();
    return true;
  }

  /** Steps the last slice left unused: what a caller may give the next match in the same turn. */
  get stepsLeft(): number {
    return Math.max(0, this.budget);
  }

  /** Walks `walk` within `steps`, from the root or from its pending nodes. Returns true when it paused with nodes still pending. */
  private run(walk: Walk<S>, visit: (holder: S) => void, steps: number, fromRoot: boolean): boolean {
    this.carried = walk.carried;
    const pending = (this.pending = walk.pending);
    const depths = (this.pendingDepths = walk.pendingDepths);
    this.budget = steps;
    this.running = true;
    try {
      if (fromRoot) this.walk(this.root, 0, walk.stamp, visit);
      while (this.budget > 0 && pending.length > 0) this.enter(pending.pop()!, depths.pop()!, walk.stamp, visit);
    } catch (err) {
      // A visitor threw: the match ends where it stands.
      pending.length = 0;
      depths.length = 0;
      this.paused.delete(walk);
      this.settle();
      throw err;
    } finally {
      this.running = false;
      if (this.emptied.length > 0) this.detachEmptied();
    }
    if (pending.length > 0) return true;
    if (fromRoot) this.settle();
    return false;
  }

  /** Enters every child of `node` the message can reach; `depth` is the children's depth minus one. */
  private walk(node: Node<S>, depth: number, stamp: number, visit: (holder: S) => void): void {
    const few = node.few;
    if (few) {
      this.budget -= few.length;
      for (let i = 0; i < few.length; i++) {
        const child = few[i]!;
        if (child.tag!.seen === stamp) this.enter(child, depth, stamp, visit);
      }
      return;
    }
    const many = node.many;
    if (!many) return;
    const carried = this.carried;
    // Paths hold distinct tags, so at most the message's other tags lie below this depth.
    if (many.size <= carried.length - depth) {
      this.budget -= many.size;
      for (const child of many.values()) {
        if (child.tag!.seen === stamp) this.enter(child, depth, stamp, visit);
      }
    } else {
      this.budget -= carried.length;
      for (let i = 0; i < carried.length; i++) {
        const child = many.get(carried[i]!.id);
        if (child) this.enter(child, depth, stamp, visit);
      }
    }
  }

  private enter(node: Node<S>, depth: number, stamp: number, visit: (holder: S) => void): void {
    // Everything below needs a tag the message lacks: skip the whole branch.
    if (node.sentinel && node.sentinel.seen !== stamp) return;
    // The slice's steps are spent: the next slice enters it.
    if (this.budget < 0) {
      this.pending.push(node);
      this.pendingDepths.push(depth);
      return;
    }
    if (node.holder !== undefined) visit(node.holder);
    else if (node.holders) for (const holder of node.holders) visit(holder);
    if (depth + 1 < this.carried.length) this.walk(node, depth + 1, stamp, visit);
  }

  /**
   * Detaches the branches emptied while a walk ran. Detaching during the
   * walk would shift the children array being walked; between slices it is
   * safe: a paused walk that still holds a node of such a branch finds no
   * holder in it.
   */
  private detachEmptied(): void {
    const emptied = this.emptied;
    for (let i = 0; i < emptied.length; i += 2) if (emptied[i + 1]!.weight === 0) emptied[i]!.detach(emptied[i + 1]!);
    emptied.length = 0;
  }

  /**
   * Releases the ids of tags freed while walks were under way, once every
   * walk under way then has ended. Released earlier, an id handed to a new
   * tag would be found by such a walk where it looks children up by the ids
   * of its message's tags, and the new tag's subscriptions would get a
   * message they do not match.
   */
  private settle(): void {
    const freed = this.freed;
    if (freed.length === 0) return;
    let oldest = Infinity;
    for (const walk of this.paused) oldest = Math.min(oldest, walk.serial);
    let released = 0;
    while (released < freed.length && freed[released]!.serial < oldest) this.freeIds.push(freed[released++]!.tag.id);
    if (released > 0) freed.splice(0, released);
  }

  /**
   * Fills `marking` with the distinct entries of a tag set, marked with a
   * new `mark`, and returns the set's hash; with `create`, new tags get ids,
   * and without it an unknown tag returns -1.
   */
  private markTags(tags: readonly string[], create: boolean): number {
    const mark = ++this.mark;
    const entries = this.marking;
    entries.length = 0;
    let hash = 0;
    for (let i = 0; i < tags.length; i++) {
      const name = tags[i]!;
      let entry = this.tags.get(name);
      if (!entry) {
        if (!create) return -1;
        const id = this.freeIds.pop() ?? this.nextId++;
        entry = { name, id, hash: mixTagId(id), subs: 0, seen: 0, marked: 0 };
        this.tags.set(name, entry);
      }
      // Duplicate tags make one subscription: ["b","a","a"] is {a,b}.
      if (entry.marked === mark) continue;
      entry.marked = mark;
      entries.push(entry);
      hash = (hash + entry.hash) | 0;
    }
    return finishHash(hash, entries.length);
  }

  /** The node ending the subscription made of the marked tags, if any. */
  private endOf(hash: number): Node<S> | undefined {
    const count = this.marking.length;
    for (let end = this.ends.get(hash); end; end = end.nextEnd) {
      const path = end.path!;
      if (path.length !== count) continue;
      let same = true;
      for (let i = 0; i < count && same; i++) same = path[i]!.marked === this.mark;
      if (same) return end;
    }
    return undefined;
  }

  private unlinkEnd(end: Node<S>, hash: number): void {
    const first = this.ends.get(hash)!;
    if (first === end) {
      if (end.nextEnd) this.ends.set(hash, end.nextEnd);
      else this.ends.delete(hash);
    } else {
      let before = first;
      while (before.nextEnd !== end) before = before.nextEnd!;
      before.nextEnd = end.nextEnd;
    }
    end.nextEnd = undefined;
  }
}

/** A copy of `entries` sorted by how few subscriptions use each tag, ties by id (insertion sort: a few tags). */
function rarestFirst(entries: readonly TagEntry[]): TagEntry[] {
  const path = entries.slice();
  for (let i = 1; i < path.length; i++) {
    const entry = path[i]!;
    let j = i - 1;
    while (j >= 0 && (path[j]!.subs > entry.subs || (path[j]!.subs === entry.subs && path[j]!.id > entry.id))) {
      path[j + 1] = path[j]!;
      j--;
    }
    path[j + 1] = entry;
  }
  return path;
}

/** The hash of a set of distinct tag ids, as the index files it. Exported for the tests, which build sets that collide. */
export function tagSetHash(ids: readonly number[]): number {
  let sum = 0;
  for (const id of ids) sum = (sum + mixTagId(id)) | 0;
  return finishHash(sum, ids.length);
}

/** A small non-negative integer (so the Map key is a small integer too) from the sum of a set's mixed ids and its size. */
function finishHash(sum: number, count: number): number {
  return (sum + count) & 0x3fffffff;
}

/** Spreads a tag id's bits (the murmur3 finalizer), so sums of a few ids rarely collide. */
function mixTagId(id: number): number {
  let h = id ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}
