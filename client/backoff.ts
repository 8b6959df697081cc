/** Reconnect delays: exponential, capped, with jitter so that many clients of one server do not return in step. */
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

export type Backoff = Required<ReconnectOptions>;

export function backoffOptions(options: ReconnectOptions = {}): Backoff {
  return {
    initialDelayMs: options.initialDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    factor: options.factor ?? 2,
    jitter: Math.min(1, Math.max(0, options.jitter ?? 0.5)),
    maxAttempts: options.maxAttempts ?? Infinity,
  };
}

/** The delay before attempt number `attempt` (0 for the first). */
export function backoffDelay(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * backoff.factor ** attempt);
  return Math.round(base * (1 - backoff.jitter * random()));
}
