/**
 * Built-in defaults: the config file overrides these, and flags override
 * the config file.
 */
import type { HistoryLimits } from '../core/history.ts';
import type { LogLevel } from '../core/logger.ts';
import type { Limits } from '../core/limits.ts';

export const DEFAULT_LISTENERS: readonly string[] = ['tcp://127.0.0.1:1445', 'http://127.0.0.1:8080', 'ws://127.0.0.1:8888'];

export const DEFAULT_LOG_LEVEL: LogLevel = 'INFO';

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxMessageBytes: 1024 * 1024,
  maxTags: 64,
  maxTagBytes: 256,
  maxSubscriptionsPerConnection: 10_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  slowConsumerPolicy: 'drop',
  // Under a millisecond on purpose: at 2000 msg/s a 1 ms batch fell due just as the
  // next message came, and half the time waited for the one after (docs/operations.md).
  flushIntervalMs: 0.75,
  maxPendingInputBytes: 256 * 1024 * 1024,
  lineTimeoutMs: 30_000,
  shutdownTimeoutMs: 5000,
  authTimeoutMs: 10_000,
  // 8 checks per 500 ms: about 16 wrong guesses a second from one address, whatever it does.
  authFailureDelayMs: 500,
  maxUnauthenticatedPerAddress: 8,
};

/** What is kept for clients to resume from (docs/protocol.md#resume): the first bound reached trims the oldest. */
export const DEFAULT_HISTORY: Readonly<HistoryLimits> = {
  maxMessages: 10_000,
  maxBytes: 64 * 1024 * 1024,
  maxAgeMs: 5 * 60_000,
};
