/**
 * What a command of the command line talks to: its standard streams, its
 * working folder and environment, and what tells it to stop. cli/bin.ts
 * gives the process's own; tests run commands inside their own process
 * with streams and a stop of their own.
 */
import type { Readable, Writable } from 'node:stream';

export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /**
   * Stops `mist --server` and `mist subscribe` when aborted, its reason
   * standing for the name of the signal (`'SIGINT'`). Without it, SIGINT or
   * SIGTERM stops them.
   */
  stop?: AbortSignal;
}

/** The process's own: what cli/bin.ts runs with. */
export function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env };
}

/**
 * Listens, from this call on, for the request to stop: `stopped` resolves
 * with its name. Call `unlisten` when done: while SIGINT has a listener, it
 * no longer ends the process.
 */
export function listenForStop(io: CliIo): { stopped: Promise<string>; unlisten: () => void } {
  let resolve!: (name: string) => void;
  const stopped = new Promise<string>((done) => (resolve = done));
  const { stop } = io;
  if (stop) {
    const onAbort = () => resolve(String(stop.reason));
    if (stop.aborted) onAbort();
    else stop.addEventListener('abort', onAbort, { once: true });
    return { stopped, unlisten: () => stop.removeEventListener('abort', onAbort) };
  }
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
  return {
    stopped,
    unlisten: () => {
      process.off('SIGINT', resolve);
      process.off('SIGTERM', resolve);
    },
  };
}

/** A mistake in how a command was called (a flag, an argument): reported with the usage, exit 2. */
export class UsageError extends Error {}
