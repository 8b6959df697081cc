/** Structured logging through pino, at the level of `--log-level`. */
import { pino } from 'pino';

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = pino.Logger;

/** A JSON-lines logger on stdout, or on `destination` (tests capture logs this way). */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: level.toLowerCase(),
    base: { name: 'mist' },
    // Readable by people as well as by log shippers.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
