/** Running commands as a developer's shell would, for the end-to-end tests of what users run. */
import { execFile } from 'node:child_process';

/** The environment of a developer's shell: none of this test run's npm, ava or tsx settings. */
export function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|AVA_|TSX_|NODE_OPTIONS$)/i.test(key)));
}

export interface Ran {
  code: number;
  /** stdout, then stderr. */
  output: string;
  stdout: string;
  ms: number;
}

/** Runs `command args` in `cwd` to its end (killed after 170 s) with the user's environment plus `env`. */
export function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...userEnv(), ...env }, timeout: 170_000 }, (err, stdout, stderr) => {
      const code = err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0;
      resolve({ code, output: stdout + stderr, stdout, ms: Date.now() - started });
    });
  });
}
