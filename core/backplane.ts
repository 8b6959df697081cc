/**
 * The backplane seam (SPEC §8): carries publishes between mist nodes. The
 * broker hands it every local publish and delivers what it receives from
 * other nodes. Implementations register by URI scheme.
 */
import type { Logger } from './logger.ts';

export interface Backplane {
  /** Sends a local publish to the other nodes. Must not block or throw. */
  publish(tags: readonly string[], data: unknown): void;
  close(): Promise<void>;
}

export interface BackplaneContext {
  logger: Logger;
  /** Delivers a publish received from another node to this node's subscribers. */
  deliver(tags: readonly string[], data: unknown): void;
}

export type BackplaneFactory = (url: URL, context: BackplaneContext) => Backplane | Promise<Backplane>;
