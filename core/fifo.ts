/**
 * A first-in, first-out queue. `Array#shift` moves every element left once
 * the array is large (V8 trims the front of small arrays only), which made
 * a backlog of 40k frames cost seconds to drain; this takes from a head
 * index instead and drops the taken part now and then.
 */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** The item `index` places from the oldest (0: the oldest); undefined past the end. */
  at(index: number): T | undefined {
    return index < 0 ? undefined : this.items[this.head + index];
  }

  /** The newest item; undefined when empty. */
  last(): T | undefined {
    return this.length === 0 ? undefined : this.items[this.items.length - 1];
  }

  /** Takes the oldest item; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) this.clear();
    // Past half taken, copy the rest down: each item is copied once on average.
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items.length = 0;
    this.head = 0;
  }
}
