/**
 * Reconnect delays: exponential, capped, with jitter so that many clients of
 * one server do not return in step. The delays themselves are computed by
 * core/backoff.ts, which the cluster's backplanes use too.
 */

export interface ReconnectOptions {
  /** Delay before the first attempt, in ms. Default 100. */
  initialDelayMs?: number;
  /** Upper bound of any delay, in ms. Default 10 000. */
  maxDelayMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** Share of each delay that is random, 0–1: a delay d becomes d·(1 − jitter·random). Default 0.5. */
  jitter?: number;
  /** Attempts after a disconnect before giving up and closing. Default Infinity. */
  maxAttempts?: number;
}

/** The reconnect settings with every default filled in. */
export type Reconnect = Required<ReconnectOptions>;

export function backoffOptions(options: ReconnectOptions = {}): Reconnect {
  return {
    initialDelayMs: options.initialDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    factor: options.factor ?? 2,
    jitter: Math.min(1, Math.max(0, options.jitter ?? 0.5)),
    maxAttempts: options.maxAttempts ?? Infinity,
  };
}
