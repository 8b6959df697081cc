/**
 * The server's metrics, in a Prometheus registry of its own (not
 * prom-client's global one), so that several servers in one process do not
 * collide. The http listener serves it at `GET /metrics`.
 *
 * The core's figures are read from the live objects at scrape time, so the
 * hot path pays nothing for them. A plugin adds its own metrics to the same
 * registry through `api.metrics`:
 *
 * @example
 * ```ts
 * // in a plugin's register(api):
 * api.metrics.gauge('mist_backplane_connected', 'Whether the backplane is connected (1) or not (0).', () =>
 *   backplane.connected ? 1 : 0,
 * );
 * ```
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { inject, injectable } from 'tsyringe';
import type { Broker } from '../core/broker.ts';
import type { Connections } from '../core/connections.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import type { PendingInput } from '../core/pending-input.ts';
import type { AuthGuard } from '../core/guard.ts';
import type { History } from '../core/history.ts';
import { TOKENS } from '../core/tokens.ts';

/** The server's metrics as plugins see them: its registry, and figures read at scrape time. */
export interface MetricsService {
  /** Where every metric of this server is registered: give it as `registers` to a prom-client metric of your own. */
  readonly registry: Registry;
  /** A gauge whose value is read from `read` at scrape time. */
  gauge(name: string, help: string, read: () => number): void;
  /** A counter whose value is read from `read` at scrape time. */
  counter(name: string, help: string, read: () => number): void;
  /** The registry in the Prometheus text format. */
  render(): Promise<string>;
  /** The content type of {@link render}'s text. */
  readonly contentType: string;
}

@injectable()
export class Metrics implements MetricsService {
  readonly registry = new Registry();

  constructor(
    @inject(TOKENS.Connections) connections: Connections,
    @inject(TOKENS.Broker) broker: Broker,
    @inject(TOKENS.Dispatcher) dispatcher: Dispatcher,
    @inject(TOKENS.PendingInput) input: PendingInput,
    @inject(TOKENS.Guard) guard: AuthGuard,
    @inject(TOKENS.History) history: History,
  ) {
    const registers = [this.registry];
    new Gauge({
      name: 'mist_connections',
      help: 'Connections open now, by transport (tcp, tls, ws, wss, sse, http).',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const [transport, count] of connections.byTransport()) this.set({ transport }, count);
      },
    });
    this.counter('mist_connections_opened_total', 'Connections opened since start (an HTTP publish counts as one).', () => connections.total);
    this.gauge('mist_subscriptions', 'Distinct subscriptions (tag sets) held on this node.', () => broker.subscriptionCount);
    this.counter('mist_messages_published_total', 'Messages published on this node.', () => broker.stats.published);
    this.counter('mist_messages_delivered_total', 'Messages handed to subscribers (one per receiving connection).', () => broker.stats.delivered);
    this.counter('mist_messages_dropped_total', 'Messages dropped because a subscriber was over maxBufferedBytes (policy drop).', () => connections.delivery.dropped);
    this.counter('mist_slow_consumers_disconnected_total', 'Connections closed for being over maxBufferedBytes (policy disconnect).', () => connections.delivery.disconnectedSlow);
    this.counter('mist_command_errors_total', 'Commands answered with an error (bad input, refusals, handler faults).', () => dispatcher.errors);
    this.gauge('mist_pending_input_bytes', 'Bytes held by unfinished lines of line-protocol (TCP, TLS) connections, against maxPendingInputBytes.', () => input.bytes);
    this.countersBy('mist_input_refusals_total', 'Connections closed for their unfinished input: budget (over maxPendingInputBytes), lineTimeout (a line unfinished for lineTimeoutMs).', 'reason', () => input.refusals);
    this.counter('mist_auth_failures_total', 'Wrong tokens answered (each after authFailureDelayMs), on every transport.', () => guard.failures);
    this.countersBy('mist_auth_refused_total', 'Refused for authentication limits: perAddress, a token check over maxUnauthenticatedPerAddress; timeout, a connection not authenticated within authTimeoutMs.', 'reason', () => guard.refused);
    this.countersBy('mist_limit_refusals_total', 'Requests refused for being over a limit, by limit.', 'limit', () => ({ maxSubscriptionsPerConnection: broker.stats.refusedSubscriptions }));
    this.counter('mist_sliced_matches_total', 'Publishes whose match took more than one slice (a few ms), the rest in later turns.', () => broker.stats.slicedMatches);
    this.counter('mist_match_slices_total', 'Slices those matches ran after their first.', () => broker.stats.matchSlices);
    this.gauge('mist_history_messages', 'Messages retained for clients to resume from (history.maxMessages).', () => history.size);
    this.gauge('mist_history_bytes', 'Bytes of the retained messages as encoded (history.maxBytes).', () => history.bytes);
    this.counter('mist_history_replays_total', 'resume commands answered (an SSE Last-Event-ID counts as one).', () => history.stats.replays);
    this.counter('mist_history_gaps_total', 'resume commands answered gap: history did not reach back to the id (or is off).', () => history.stats.gaps);
    this.counter('mist_history_replayed_messages_total', 'Messages sent by replays.', () => history.stats.replayed);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A counter with one series per key of what `read` returns, under the label `label`. */
  private countersBy(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
      },
    });
  }

  counter(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        const value = read();
        if (value > 0) this.inc(value);
      },
    });
  }
}
