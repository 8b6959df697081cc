/** Reconnect delays shared by the backplane plugins. */

/** Exponential backoff with jitter: 100 ms doubling each attempt up to 5 s, plus up to 100 ms at random. */
export function backoffMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, Math.min(attempt - 1, 6)), 5000) + Math.floor(Math.random() * 100);
}

/** Resolves with `promise`, or undefined after `ms`, whichever comes first; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
