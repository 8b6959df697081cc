/**
 * What the client uses and offers of Node's `EventEmitter` — `on`, `once`,
 * `off` and their aliases, `emit`, `listenerCount`, `removeAllListeners` —
 * for the browser build, which bundles this module in place of
 * `node:events`.
 */
type Listener = (...args: unknown[]) => void;
type Name = string | symbol;

/** A listener registered with `once`, wrapped so that `off(original)` finds it. */
interface Once extends Listener {
  listener: Listener;
}

export class EventEmitter {
  readonly #listeners = new Map<Name, Listener[]>();

  on(name: Name, listener: Listener): this {
    const list = this.#listeners.get(name);
    if (list) list.push(listener);
    else this.#listeners.set(name, [listener]);
    return this;
  }

  addListener(name: Name, listener: Listener): this {
    return this.on(name, listener);
  }

  once(name: Name, listener: Listener): this {
    const once = ((...args: unknown[]) => {
      this.off(name, once);
      listener.apply(this, args);
    }) as Once;
    once.listener = listener;
    return this.on(name, once);
  }

  off(name: Name, listener: Listener): this {
    const list = this.#listeners.get(name) ?? [];
    const i = list.findLastIndex((l) => l === listener || (l as Partial<Once>).listener === listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(name);
    return this;
  }

  removeListener(name: Name, listener: Listener): this {
    return this.off(name, listener);
  }

  removeAllListeners(name?: Name): this {
    if (name === undefined) this.#listeners.clear();
    else this.#listeners.delete(name);
    return this;
  }

  /** Calls the listeners in order; like Node's, an `error` no one listens to is thrown. */
  emit(name: Name, ...args: unknown[]): boolean {
    const list = this.#listeners.get(name);
    if (!list) {
      if (name === 'error') throw args[0] instanceof Error ? args[0] : new Error(`unhandled error event: ${String(args[0])}`);
      return false;
    }
    for (const listener of [...list]) listener.apply(this, args);
    return true;
  }

  listenerCount(name: Name): number {
    return this.#listeners.get(name)?.length ?? 0;
  }
}
