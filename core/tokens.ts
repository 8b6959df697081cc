/**
 * Dependency-injection tokens: every core service is resolved by one of
 * these. Constructor parameters name their token with `@inject(TOKENS.X)`
 * because tsx (esbuild) emits no decorator metadata to inject by type.
 */
export const TOKENS = {
  /** The merged configuration (`MistConfig`). */
  Config: Symbol('mist.Config'),
  /** The connection limits (`config.limits`). */
  Limits: Symbol('mist.Limits'),
  Logger: Symbol('mist.Logger'),
  Broker: Symbol('mist.Broker'),
  Connections: Symbol('mist.Connections'),
  Dispatcher: Symbol('mist.Dispatcher'),
  /** Authentication and permissions (`Auth`). */
  Auth: Symbol('mist.Auth'),
  Commands: Symbol('mist.Commands'),
  Listeners: Symbol('mist.Listeners'),
  Authenticators: Symbol('mist.Authenticators'),
  Backplanes: Symbol('mist.Backplanes'),
  /** The server's Prometheus registry (`Metrics`); plugins add their own metrics to it. */
  Metrics: Symbol('mist.Metrics'),
  /** This node's `Cluster`, registered only when `--cluster` is set. */
  Cluster: Symbol('mist.Cluster'),
} as const;
