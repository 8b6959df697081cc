/**
 * Plugin lifecycle hooks (`api.onStart`, `api.onReady`, `api.onClose`).
 *
 * Start-up: every plugin registers, in order; then the start hooks run in
 * that order (open connections, load files); then the authenticator opens,
 * the cluster is joined and the listeners bind; then the ready hooks run (the server's URLs are
 * known). A hook that throws stops start-up with a message naming its
 * plugin, and the server closes.
 *
 * Closing: listeners close first (so no session is left), then the
 * cluster, then the authenticator, then every close hook, in the reverse order of being added
 * — also after a failed or partial start, so a close hook must cope with a
 * start that never ran. A close hook that throws is logged, naming its
 * plugin, and the others still run.
 */
import { ErrorCodes, MistError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/** A lifecycle hook; may be async, and is awaited before the next one runs. */
export type LifecycleHook = () => void | Promise<void>;

export type LifecycleStage = 'start' | 'ready' | 'close';

const FAILED: Record<Exclude<LifecycleStage, 'close'>, string> = {
  start: 'failed to start',
  ready: 'failed in its ready hook',
};

export class PluginHooks {
  private readonly hooks: Array<{ plugin: string; stage: LifecycleStage; hook: LifecycleHook }> = [];

  add(plugin: string, stage: LifecycleStage, hook: LifecycleHook): void {
    if (typeof hook !== 'function') throw new MistError(ErrorCodes.PLUGIN, `plugin "${plugin}" gave a ${stage} hook that is not a function`);
    this.hooks.push({ plugin, stage, hook });
  }

  /** Runs the `stage` hooks in order; the first that throws stops the run, named in a `MIST_ERR_PLUGIN`. */
  async run(stage: 'start' | 'ready'): Promise<void> {
    // By index: a hook may add hooks, which then run too.
    for (let i = 0; i < this.hooks.length; i++) {
      const { plugin, stage: own, hook } = this.hooks[i]!;
      if (own !== stage) continue;
      try {
        await hook();
      } catch (err) {
        throw new MistError(ErrorCodes.PLUGIN, `plugin "${plugin}" ${FAILED[stage]}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** Runs every close hook, last added first; failures are logged and do not stop the others. */
  async close(logger: Logger): Promise<void> {
    for (const { plugin, stage, hook } of [...this.hooks].reverse()) {
      if (stage !== 'close') continue;
      try {
        await hook();
      } catch (err) {
        logger.error({ err, plugin }, `plugin "${plugin}" failed to close: ${(err as Error).message}`);
      }
    }
  }
}
