/**
 * A `hold` command that answers only when the test releases it: an
 * asynchronous command, behind which its connection's later input waits
 * (read, queued, its socket paused).
 */
import { command } from '../../core/commands.ts';
import type { Message } from '../../core/protocol.ts';
import { definePlugin, type MistPlugin } from '../../host/api.ts';
import { Wakeup } from './wakeup.ts';

export class Hold {
  /** Holds running now, each waiting for its release. */
  private readonly waiting: Array<() => void> = [];
  private readonly wakeup = new Wakeup();
  /** Holds started so far. */
  started = 0;

  readonly plugin: MistPlugin;

  constructor() {
    const hold = this;
    class HoldCommands {
      @command('hold', { anonymous: true })
      run(): Promise<Message> {
        hold.started++;
        hold.wakeup.wake();
        return new Promise((resolve) => hold.waiting.push(() => resolve({ command: 'hold', data: 'released' })));
      }
    }
    this.plugin = definePlugin({ name: 'hold', register: (api) => api.commands.add(new HoldCommands()) });
  }

  /** Resolves once `count` holds have started in all (rejects after `timeoutMs`). */
  async whenStarted(count = 1, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.started < count) {
      if (Date.now() >= deadline) throw new Error(`${this.started} of ${count} holds started within ${timeoutMs} ms`);
      await this.wakeup.wait(deadline);
    }
  }

  /** Answers every hold running now. */
  release(): void {
    for (const answer of this.waiting.splice(0)) answer();
  }
}
