/** The per-server dependency-injection container, wired by the tokens of tokens.ts. */
import 'reflect-metadata';
import { container as root, Lifecycle, type DependencyContainer } from 'tsyringe';
import { Auth } from '../core/auth.ts';
import type { AuthenticatorFactory } from '../core/authenticator.ts';
import type { BackplaneFactory } from '../core/backplane.ts';
import { Broker } from '../core/broker.ts';
import { CommandRegistry } from '../core/commands.ts';
import type { MistConfig } from './config.ts';
import { Connections } from '../core/connections.ts';
import { Dispatcher } from '../core/dispatcher.ts';
import type { ListenerFactory } from '../core/listener.ts';
import type { Logger } from '../core/logger.ts';
import { Metrics } from './metrics.ts';
import { SchemeRegistry } from './registry.ts';
import { TOKENS } from '../core/tokens.ts';

/** A fresh container for one server, so several servers can share a process. */
export function createContainer(config: MistConfig, logger: Logger): DependencyContainer {
  const c = root.createChildContainer();
  const scoped = { lifecycle: Lifecycle.ContainerScoped } as const;
  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.Limits, { useValue: config.limits });
  c.register(TOKENS.Logger, { useValue: logger });
  c.register(TOKENS.Broker, { useClass: Broker }, scoped);
  c.register(TOKENS.Connections, { useClass: Connections }, scoped);
  c.register(TOKENS.Dispatcher, { useClass: Dispatcher }, scoped);
  c.register(TOKENS.Metrics, { useClass: Metrics }, scoped);
  c.register(TOKENS.Auth, { useValue: new Auth() });
  c.register(TOKENS.Commands, { useValue: new CommandRegistry(c) });
  c.register(TOKENS.Listeners, { useValue: new SchemeRegistry<ListenerFactory>('listener') });
  c.register(TOKENS.Authenticators, { useValue: new SchemeRegistry<AuthenticatorFactory>('authenticator') });
  c.register(TOKENS.Backplanes, { useValue: new SchemeRegistry<BackplaneFactory>('backplane') });
  return c;
}
