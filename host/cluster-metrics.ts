/** The cluster's state and counters in `/metrics`, read at scrape time. */
import type { Cluster, ClusterStats } from '../core/cluster.ts';
import type { Metrics } from './metrics.ts';

const COUNTERS: Record<keyof ClusterStats, string> = {
  forwarded: 'Local publishes handed to the backplane.',
  skipped: 'Local publishes not sent because no other node has a matching subscription.',
  dropped: 'Local publishes another node could have used, dropped because the backplane was down.',
  received: 'Messages from other nodes delivered here.',
  lost: 'Envelopes from other nodes that never arrived (gaps in their sequence).',
  echoes: "This node's own envelopes echoed back by the backplane, ignored.",
  invalid: 'Malformed backplane payloads ignored.',
  disconnects: 'Times the backplane connection was lost.',
  reconnects: 'Times the backplane connection came back.',
  unstreamed: 'Local publishes the history stream could not take: delivered here at once and sent the pub/sub way.',
};

export function registerClusterMetrics(metrics: Metrics, cluster: Cluster): void {
  metrics.gauge('mist_cluster_backplane_up', 'Whether the backplane is connected (1) or not (0).', () => (cluster.state === 'up' ? 1 : 0));
  metrics.gauge('mist_cluster_peers', 'Other nodes heard from.', () => cluster.status().peers);
  metrics.gauge('mist_cluster_remote_subscriptions', 'Distinct subscriptions other nodes announced.', () => cluster.status().remoteSubscriptions);
  for (const [key, help] of Object.entries(COUNTERS)) {
    metrics.counter(`mist_cluster_${key}_total`, help, () => cluster.stats[key as keyof ClusterStats]);
  }
}
