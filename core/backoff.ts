/**
 * Exponential backoff with jitter, for reconnecting: the client's
 * (client/backoff.ts gives its documented defaults) and the cluster
 * backplanes' (core/cluster.ts). The client imports this module, so it has
 * no Node-only import and nothing of the server.
 */

export interface Backoff {
  /** Delay before the first attempt, in ms. */
  initialDelayMs: number;
  /** Upper bound of the exponential part, in ms. */
  maxDelayMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Share of each delay taken off at random, 0–1: a delay d becomes d·(1 − jitter·random). */
  jitter: number;
  /** Up to this many ms added at random instead, so that no delay is shorter than the exponential one. Default 0. */
  jitterMs?: number;
}

/** The delay before attempt number `attempt` (0 for the first). */
export function backoffDelay(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * backoff.factor ** attempt);
  const r = random();
  return Math.round(base * (1 - backoff.jitter * r)) + Math.floor((backoff.jitterMs ?? 0) * r);
}
