/**
 * A mist server's lifecycle: load plugins, run their start hooks, start
 * listeners, run ready hooks, run, close (listeners, then close hooks).
 * States go idle → starting → running → closing → closed; `close()` is
 * idempotent and also cleans up after a failed start.
 */
import type { Auth } from '../core/auth.ts';
import type { AuthenticatorFactory } from '../core/authenticator.ts';
import type { BackplaneFactory } from '../core/backplane.ts';
import type { Broker } from '../core/broker.ts';
import { Cluster } from '../core/cluster.ts';
import type { Connections } from '../core/connections.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import type { AuthGuard } from '../core/guard.ts';
import type { History } from '../core/history.ts';
import { ErrorCodes, MistError, type ErrorCode } from '../core/errors.ts';
import { FlushScheduler, OutputQueue } from '../core/flush.ts';
import type { Listener, ListenerContext, ListenerFactory } from './listener.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { PendingInput } from '../core/pending-input.ts';
import type { Session } from '../core/session.ts';
import { socketServer } from './socket.ts';
import { TOKENS } from '../core/tokens.ts';
import type { MistPlugin, PluginHost, Registries } from './api.ts';
import { registerClusterMetrics } from './cluster-metrics.ts';
import type { MistConfig } from './config.ts';
import { METRICS, Services } from './container.ts';
import { PluginHooks } from './hooks.ts';
import { loadPlugins } from './loader.ts';
import type { Metrics } from './metrics.ts';
import { Origins } from './origins.ts';
import { ReadTurns } from './read-turns.ts';
import { SchemeRegistry } from './registry.ts';

export type ServerState = 'idle' | 'starting' | 'running' | 'closing' | 'closed';

export interface ServerOptions {
  /** Where log lines go; default JSON lines on stdout at `config.logLevel`. */
  logger?: Logger;
  /**
   * Plugins registered before those the config lists. `MistServer` starts
   * bare (none); `startServer` and `mist --server` give the built-in preset.
   */
  plugins?: readonly MistPlugin[];
}

export class MistServer {
  private readonly services: Services;
  private readonly registries: Registries = {
    listeners: new SchemeRegistry<ListenerFactory>('listener'),
    authenticators: new SchemeRegistry<AuthenticatorFactory>('authenticator'),
    backplanes: new SchemeRegistry<BackplaneFactory>('backplane'),
  };
  private readonly listeners: Listener[] = [];
  private readonly hooks = new PluginHooks();
  private closing: Promise<void> | undefined;
  private clusterNode: Cluster | undefined;
  private readonly origins: Origins;
  /** @internal Each event-loop turn's reading, shared among the connections (`context.shareReading`). */
  readonly readTurns = new ReadTurns();
  state: ServerState = 'idle';

  readonly logger: Logger;
  /** Registered before the config's plugins: the built-in preset, or an embedder's own. */
  private readonly plugins: readonly MistPlugin[];

  constructor(
    readonly config: MistConfig,
    options: ServerOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.logLevel);
    this.plugins = options.plugins ?? [];
    this.services = new Services(config.limits, this.logger, config.history);
    this.origins = new Origins(config.allowedOrigins, this.logger);
    this.metrics.counter('mist_origin_refused_total', 'Requests and WebSocket upgrades refused for their Origin (allowedOrigins).', () => this.origins.refused);
    this.metrics.counter(
      'mist_input_holds_total',
      'Times a TCP, TLS or WebSocket connection stopped reading for a turn or more, having read more than its share of a busy event-loop turn.',
      () => this.readTurns.holds,
    );
  }

  // The core's own objects, for this package's tests and benches: marked
  // internal, they are left out of the published declarations (stripInternal),
  // so an embedder sees none of them; plugins get narrow views (api.ts).

  /** @internal */
  get broker(): Broker {
    return this.services.resolve(TOKENS.Broker);
  }

  /** @internal The retained messages clients resume from. */
  get history(): History {
    return this.services.resolve(TOKENS.History);
  }

  /** @internal */
  get connections(): Connections {
    return this.services.resolve(TOKENS.Connections);
  }

  /** @internal */
  get dispatcher(): Dispatcher {
    return this.services.resolve(TOKENS.Dispatcher);
  }

  /** @internal What the line-protocol connections hold of unfinished lines, and how many were closed for it. */
  get pendingInput(): PendingInput {
    return this.services.resolve(TOKENS.PendingInput);
  }

  /** The server's Prometheus registry, as `GET /metrics` serves it. */
  get metrics(): Metrics {
    return this.services.resolve(METRICS);
  }

  /** @internal This node's part of the cluster, when `config.cluster` is set: `cluster.status()` for metrics. */
  get cluster(): Cluster | undefined {
    return this.clusterNode;
  }

  /** @internal */
  get auth(): Auth {
    return this.services.resolve(TOKENS.Auth);
  }

  /** @internal */
  get guard(): AuthGuard {
    return this.services.resolve(TOKENS.Guard);
  }

  /** The names of the commands plugins declared, sorted. */
  get commandNames(): string[] {
    return this.services.resolve(TOKENS.Commands).names();
  }

  /** The URI schemes plugins registered for listeners, authenticators or backplanes, sorted. */
  schemes(kind: keyof Registries): string[] {
    return this.registries[kind].schemes();
  }

  /** The URIs served, with real ports. */
  get urls(): string[] {
    return this.listeners.map((listener) => listener.url);
  }

  /** The URI served for `scheme` (the first, if several). */
  url(scheme: string): string {
    const url = this.urls.find((u) => u.startsWith(`${scheme}://`));
    if (!url) throw new Error(`no ${scheme} listener`);
    return url;
  }

  async start(): Promise<this> {
    if (this.state !== 'idle') throw new Error(`cannot start a server that is ${this.state}`);
    this.state = 'starting';
    try {
      const host: PluginHost = { config: this.config, logger: this.logger, services: this.services, registries: this.registries, hooks: this.hooks };
      await loadPlugins(host, this.plugins, this.config.plugins);
      await this.hooks.run('start');
      await this.startAuthenticator();
      await this.startCluster();
      await this.startListeners();
      await this.hooks.run('ready');
    } catch (err) {
      await this.close();
      throw err;
    }
    this.state = 'running';
    return this;
  }

  /**
   * Shuts down: a running server first drains its connections (see
   * {@link drain}); then the listeners close, destroying what is left; then
   * the cluster (publishes already read have reached the backplane by then),
   * the authenticator and the plugins' close hooks.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'closing';
      if (wasRunning) await this.drain();
      for (const listener of [...this.listeners].reverse()) await listener.close();
      this.pendingInput.close();
      await this.cluster?.close();
      await this.auth.close();
      await this.hooks.close(this.logger);
      this.state = 'closed';
      if (wasRunning) this.logger.info('closed');
    })();
    return this.closing;
  }

  /**
   * Lets every connection finish, for at most `shutdownTimeoutMs`: the
   * listeners stop accepting, then the sessions stop reading, handle what
   * they read and are ended; done once the listeners' connections are closed.
   */
  private async drain(): Promise<void> {
    const timeoutMs = this.config.limits.shutdownTimeoutMs;
    this.logger.info({ connections: this.connections.count, timeoutMs }, 'draining connections');
    const closed = Promise.all(this.listeners.map((listener) => listener.drain?.()));
    // Publishes on their way through the cluster's stream are delivered here once they come back.
    const drained = this.connections.drain(() => this.cluster?.settled()).then(() => closed);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, true)));
    if (await Promise.race([drained.then(() => false), timedOut])) {
      this.logger.warn({ connections: this.connections.count, timeoutMs }, 'shutdown timeout: the connections still open are destroyed');
    }
    clearTimeout(timer);
  }

  /** Opens the configured authenticator, if any; from then on connections must authenticate. */
  private async startAuthenticator(): Promise<void> {
    const { authenticator: uri, token } = this.config;
    if (uri === undefined) return;
    const { url, factory } = this.registries.authenticators.resolve(uri, 'authenticator');
    const logger = this.logger.child({ authenticator: url.protocol.slice(0, -1) });
    let store;
    try {
      store = await factory(url, { logger });
    } catch (err) {
      throw startError(err, ErrorCodes.AUTHENTICATOR, `cannot open authenticator ${redact(url)}`, 'authenticator');
    }
    this.auth.enable(store, token!, logger);
    this.logger.info({ authenticator: redact(url) }, 'authentication required');
  }

  /** Joins the cluster of `config.cluster`, if any; connecting goes on in the background. */
  private async startCluster(): Promise<void> {
    const uri = this.config.cluster;
    if (uri === undefined) return;
    const { url, factory } = this.registries.backplanes.resolve(uri, 'cluster');
    const scheme = url.protocol.slice(0, -1);
    const cluster = new Cluster(this.broker, this.logger.child({ backplane: scheme }), url, redact(url), this.history);
    try {
      await cluster.start(factory);
    } catch (err) {
      throw startError(err, ErrorCodes.BACKPLANE, `cannot use backplane ${redact(url)}`, 'cluster');
    }
    this.clusterNode = cluster;
    registerClusterMetrics(this.metrics, cluster);
  }

  private async startListeners(): Promise<void> {
    // Resolve every URI first, so a typo fails before anything is bound.
    const planned = this.config.listeners.map((uri) => ({ uri, ...this.registries.listeners.resolve(uri, 'listeners') }));
    for (const { uri, url, factory } of planned) {
      const listener = factory(url, this.listenerContext());
      try {
        await listener.listen();
      } catch (err) {
        throw new MistError(ErrorCodes.LISTEN, `cannot listen on ${uri}: ${(err as Error).message}`, { cause: err });
      }
      this.listeners.push(listener);
      this.logger.info({ url: listener.url }, `listening on ${listener.url}`);
    }
  }

  /** What one listener gets of the server: one each, so that each coalesces its own sockets' writes. */
  private listenerContext(): ListenerContext {
    const connections = this.connections;
    const auth = this.auth;
    const guard = this.guard;
    const flusher = new FlushScheduler(this.config.limits.flushIntervalMs);
    const turns = this.readTurns;
    const context: Omit<ListenerContext, 'serveSocket'> = {
      open: (sink, info, identity) => connections.open(sink, info, identity),
      // Every connection a listener holds is a session this server opened for it (`open`).
      run: (session: Session, request) => connections.run(session, request),
      runOnce: (info, request, identity) => connections.runOnce(info, request, identity),
      auth: {
        get required() {
          return auth.required;
        },
        identify: (token, peer) => guard.identify(token, peer),
      },
      origins: this.origins,
      limits: this.config.limits,
      logger: this.logger,
      output: (write) => new OutputQueue(flusher, write),
      shareReading: (socket, input) => turns.share(socket, input),
    };
    return { ...context, serveSocket: socketServer(context, this.pendingInput) };
  }
}

/** A plugin's failure to open what config `key` names, as a start-up error saying what; a MistError stays as it is. */
function startError(err: unknown, code: ErrorCode, what: string, key: string): MistError {
  if (err instanceof MistError) return err;
  return new MistError(code, `${what}: ${(err as Error).message}`, { cause: err, key });
}

/** A URI fit for logs: without its password. */
function redact(url: URL): string {
  if (!url.password) return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}
