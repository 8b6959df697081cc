/**
 * The per-server dependency-injection container: tsyringe builds the core
 * services and wires them by the tokens of core/tokens.ts. This is the one
 * place that touches tsyringe's container; the rest of the host resolves
 * through {@link Services.resolve}, typed by the token.
 */
import 'reflect-metadata';
import { container as root, Lifecycle, type DependencyContainer } from 'tsyringe';
import { Access } from '../core/access.ts';
import { Auth } from '../core/auth.ts';
import { Broker } from '../core/broker.ts';
import { CommandRegistry } from '../core/commands.ts';
import { Connections } from '../core/connections.ts';
import { Dispatcher } from '../core/dispatcher.ts';
import { AuthGuard } from '../core/guard.ts';
import { History, type HistoryLimits } from '../core/history.ts';
import type { Limits } from '../core/limits.ts';
import type { Logger } from '../core/logger.ts';
import { PendingInput } from '../core/pending-input.ts';
import { token, TOKENS, type Token } from '../core/tokens.ts';
import { Metrics } from './metrics.ts';

/** The host's one service of its own, beside the core's TOKENS. */
export const METRICS = token<Metrics>('mist.Metrics');

/** One server's services, in a container of their own, so several servers can share a process. */
export class Services {
  private readonly container: DependencyContainer = root.createChildContainer();

  constructor(limits: Limits, logger: Logger, history: HistoryLimits | false) {
    this.value(TOKENS.Limits, limits);
    this.value(TOKENS.Logger, logger);
    this.value(TOKENS.History, new History(history));
    this.value(TOKENS.Auth, new Auth());
    this.value(TOKENS.Commands, new CommandRegistry());
    this.scoped(TOKENS.Broker, Broker);
    this.scoped(TOKENS.Connections, Connections);
    this.scoped(TOKENS.Dispatcher, Dispatcher);
    this.scoped(TOKENS.Guard, AuthGuard);
    this.scoped(TOKENS.Access, Access);
    this.scoped(TOKENS.PendingInput, PendingInput);
    this.scoped(METRICS, Metrics);
  }

  resolve<T>(token: Token<T>): T {
    return this.container.resolve<T>(token);
  }

  private value<T>(token: Token<T>, value: T): void {
    this.container.register(token, { useValue: value });
  }

  /** A class built on first use, once per container, with what its constructor's `@inject` tokens name (tsyringe types those `any`). */
  private scoped<T>(token: Token<T>, service: new (...args: any[]) => T): void {
    this.container.register(token, { useClass: service }, { lifecycle: Lifecycle.ContainerScoped });
  }
}
