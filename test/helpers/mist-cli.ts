/**
 * `node bin/mist.js …` as a child process for the client commands: stdin
 * to write to, output to wait on. Killed at teardown if still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { Wakeup } from './wakeup.ts';

const BIN = fileURLToPath(new URL('../../bin/mist.js', import.meta.url));
/** Generous: each child starts node and tsx on a slow, shared machine. */
export const CHILD_WAIT_MS = 40_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class MistCli {
  stdout = '';
  stderr = '';
  private exitStatus: Exit | undefined;
  private readonly wakeup = new Wakeup();

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
      this.wakeup.wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
      this.wakeup.wake();
    });
    child.once('close', (code, signal) => {
      this.exitStatus = { code, signal };
      this.wakeup.wake();
    });
  }

  /** Starts `mist …args`; `input`, when given, is written to its stdin, which is then closed. */
  static start(t: ExecutionContext, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): MistCli {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const cli = new MistCli(child);
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
    t.teardown(async () => {
      if (cli.exitStatus) return;
      child.kill('SIGKILL');
      await cli.exit();
    });
    return cli;
  }

  /** Runs `mist …args` to its end. */
  static async run(t: ExecutionContext, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<MistCli & { status: Exit }> {
    const cli = MistCli.start(t, args, input, env);
    await cli.exit();
    return cli as MistCli & { status: Exit };
  }

  get status(): Exit | undefined {
    return this.exitStatus;
  }

  async exit(): Promise<Exit> {
    await this.until(() => this.exitStatus !== undefined, 'exit');
    return this.exitStatus!;
  }

  /** Waits until `pattern` appears in stdout or stderr (`stream`). */
  async waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<void> {
    await this.until(() => pattern.test(this[stream]), `${pattern} on ${stream}`);
  }

  private async until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + CHILD_WAIT_MS;
    while (!condition()) {
      if (this.exitStatus && !condition()) throw new Error(`exited before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`waited ${CHILD_WAIT_MS} ms for ${what} in vain\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await this.wakeup.wait(deadline);
    }
  }
}
