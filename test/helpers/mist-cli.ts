/**
 * `mist …` for tests: run in this process through main(), with streams, a
 * working folder, an environment and a stop of its own (most tests: no
 * start-up cost), or with `spawn: true` as the executable in a child
 * process, as a user runs it (the few end-to-end tests): cli/bin.ts as
 * this test run compiled it (test/helpers/paths.ts), with plain node
 * (test/package.e2e.test.ts runs the packed one). Both are read, stopped and
 * awaited alike, and ended at teardown if still running.
 */
import { spawn } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { main } from '../../cli/main.ts';
import { source } from './paths.ts';
import { userEnv } from './run.ts';
import { Wakeup, WAIT_MS } from './wakeup.ts';

const BIN = fileURLToPath(source('cli/bin.ts'));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface MistOptions {
  /** Written to stdin, which is then closed (at once when not given). */
  input?: string;
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** The working folder; this process's by default. */
  cwd?: string;
  /** Runs `node cli/bin.js` (compiled) in a child process instead of main() in this one. */
  spawn?: boolean;
  /**
   * With `spawn`: runs this executable instead (`['npx', 'mist']` of an
   * installed package), as a user's shell would: without this test run's
   * npm, ava and tsx settings, in a process group of its own that signals
   * reach whole, as a terminal's Ctrl-C reaches npx and the mist it runs.
   */
  command?: string[];
}

/** A JSON log line of `mist --server`. */
export type LogLine = Record<string, unknown>;

export class MistCli {
  stdout = '';
  stderr = '';
  private exitStatus: Exit | undefined;
  private crash: { error: unknown } | undefined;
  private readonly wakeup = new Wakeup();

  /** `stop` stands for sending the process a signal. */
  private constructor(readonly stop: (signal: NodeJS.Signals) => void) {}

  /** Starts `mist …args`. */
  static start(t: ExecutionContext, args: string[], options: MistOptions = {}): MistCli {
    const cli = options.spawn ? MistCli.spawn(args, options) : MistCli.inProcess(args, options);
    t.teardown(async () => {
      if (cli.crash) throw cli.crash.error;
      if (cli.exitStatus) return;
      cli.stop('SIGKILL');
      await cli.exit();
    });
    return cli;
  }

  /** Runs `mist …args` to its end. */
  static async run(t: ExecutionContext, args: string[], options?: MistOptions): Promise<MistCli & { status: Exit }> {
    const cli = MistCli.start(t, args, options);
    await cli.exit();
    return cli as MistCli & { status: Exit };
  }

  private static inProcess(args: string[], options: MistOptions): MistCli {
    const controller = new AbortController();
    const cli = new MistCli((signal) => controller.abort(signal));
    // Written synchronously, so that all of it is here by the time main() resolves.
    const capture = (stream: 'stdout' | 'stderr') =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          cli.append(stream, chunk.toString('utf8'));
          done();
        },
      });
    main(args, {
      stdin: Readable.from(options.input === undefined ? [] : [options.input]),
      stdout: capture('stdout'),
      stderr: capture('stderr'),
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, ...options.env },
      stop: controller.signal,
    }).then(
      (code) => cli.exited({ code, signal: null }),
      (error: unknown) => {
        cli.crash = { error };
        cli.wakeup.wake();
      },
    );
    return cli;
  }

  private static spawn(args: string[], options: MistOptions): MistCli {
    const [file, ...lead] = options.command ?? [process.execPath, BIN];
    const env = options.command ? userEnv() : process.env;
    const group = options.command !== undefined;
    const child = spawn(file!, [...lead, ...args], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, ...options.env }, detached: group });
    const cli = new MistCli((signal) => (group ? process.kill(-child.pid!, signal) : child.kill(signal)));
    child.stdout.setEncoding('utf8').on('data', (text: string) => cli.append('stdout', text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => cli.append('stderr', text));
    child.on('error', (err) => cli.append('stderr', `spawn failed: ${err.message}\n`));
    // 'close' comes after the output streams end, so nothing written is missed.
    child.once('close', (code, signal) => cli.exited({ code, signal }));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
    return cli;
  }

  get status(): Exit | undefined {
    return this.exitStatus;
  }

  /** The JSON log lines written to stdout so far. */
  get logs(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as LogLine];
        } catch {
          return [];
        }
      });
  }

  /** Waits for the end; a crash of main() in this process is thrown here. */
  async exit(): Promise<Exit> {
    await this.until(() => this.exitStatus !== undefined, 'exit');
    return this.exitStatus!;
  }

  /** Waits until `pattern` appears in stdout or stderr (`stream`). */
  async waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<void> {
    await this.until(() => pattern.test(this[stream]), `${pattern} on ${stream}`);
  }

  /** The first log line `match` accepts, waiting for it to be written. */
  async waitForLog(match: (line: LogLine) => boolean, what: string): Promise<LogLine> {
    await this.until(() => this.logs.some(match), what);
    return this.logs.find(match)!;
  }

  /** Waits until the server is up and handling signals, and returns its listeners' URLs. */
  async ready(): Promise<string[]> {
    await this.waitForLog((line) => line.msg === 'mist is ready', '"mist is ready"');
    return this.logs.flatMap((line) => (typeof line.url === 'string' && line.msg === `listening on ${line.url}` ? [line.url] : []));
  }

  private append(stream: 'stdout' | 'stderr', text: string): void {
    this[stream] += text;
    this.wakeup.wake();
  }

  private exited(status: Exit): void {
    this.exitStatus = status;
    this.wakeup.wake();
  }

  private async until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!condition()) {
      if (this.crash) throw this.crash.error;
      if (this.exitStatus) throw new Error(`exited before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what} in vain\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await this.wakeup.wait(deadline);
    }
  }
}
