/**
 * Cluster series of `GET /metrics` (Prometheus text, prefixed `capra_cluster_`).
 *
 * @module
 */

/** Counters of a cluster member. */
export class ClusterMetrics {
  /** Commits acknowledged by the stream (duplicates included). */
  published = 0;
  /** Publish attempts that failed (each retry counts). */
  publishFailures = 0;
  /** Commits given up after the retry window or a full queue (their repository is reconciled). */
  publishGivenUp = 0;
  /** Stream messages applied (each carries one commit). */
  consumed = 0;
  /** Commits new to this member among those consumed. */
  ingested = 0;
  /** Consumed messages whose commit this member already held (skipped undecoded). */
  known = 0;
  /** Commits from the stream refused by verification (signature, session, write rule). */
  refused = 0;
  /** Stream messages that could not be decoded. */
  malformed = 0;
  /** Consumers recreated by the watchdog (silence, reconnect, errors). */
  consumerRestarts = 0;
  /** Repositories reconciled with another member. */
  reconciled = 0;
  /** Reconciliations that failed. */
  reconcileFailures = 0;
  /** Connections to NATS re-established. */
  reconnects = 0;
}

/** Gauges sampled at render time. */
export interface ClusterGauges {
  readonly connected: boolean;
  readonly ready: boolean;
  readonly lag: number;
  readonly applied: number;
  readonly publishQueue: number;
  readonly dirtyRepositories: number;
  readonly failedRepositories: number;
}

/** Prometheus exposition of the cluster series. */
export function renderClusterMetrics(
  m: ClusterMetrics,
  g: ClusterGauges,
): string {
  const rows: [string, "counter" | "gauge", string, number][] = [
    [
      "published_total",
      "counter",
      "Commits acknowledged by the stream",
      m.published,
    ],
    [
      "publish_failures_total",
      "counter",
      "Failed publish attempts (retried)",
      m.publishFailures,
    ],
    [
      "publish_given_up_total",
      "counter",
      "Commits not published in time (their repository is reconciled)",
      m.publishGivenUp,
    ],
    ["consumed_total", "counter", "Stream messages applied", m.consumed],
    [
      "ingested_total",
      "counter",
      "Commits new to this member among those consumed",
      m.ingested,
    ],
    [
      "known_total",
      "counter",
      "Consumed messages whose commit was already here",
      m.known,
    ],
    [
      "refused_total",
      "counter",
      "Commits from the stream refused by verification",
      m.refused,
    ],
    [
      "malformed_total",
      "counter",
      "Stream messages that could not be decoded",
      m.malformed,
    ],
    [
      "consumer_restarts_total",
      "counter",
      "Stream consumers recreated by the watchdog",
      m.consumerRestarts,
    ],
    [
      "reconciled_total",
      "counter",
      "Repositories reconciled with another member",
      m.reconciled,
    ],
    [
      "reconcile_failures_total",
      "counter",
      "Failed reconciliations with another member",
      m.reconcileFailures,
    ],
    ["nats_reconnects_total", "counter", "NATS reconnections", m.reconnects],
    [
      "nats_connected",
      "gauge",
      "1 while connected to NATS",
      g.connected ? 1 : 0,
    ],
    [
      "ready",
      "gauge",
      "1 once caught up with the cluster (/healthz ok)",
      g.ready ? 1 : 0,
    ],
    [
      "lag_messages",
      "gauge",
      "Stream messages not applied here yet",
      g.lag,
    ],
    [
      "applied_sequence",
      "gauge",
      "Last stream sequence applied here",
      g.applied,
    ],
    [
      "publish_queue",
      "gauge",
      "Commits waiting for a stream acknowledgement",
      g.publishQueue,
    ],
    [
      "dirty_repositories",
      "gauge",
      "Repositories the stream may not fully hold yet",
      g.dirtyRepositories,
    ],
    [
      "failed_repositories",
      "gauge",
      "Repositories waiting for reconciliation with a member",
      g.failedRepositories,
    ],
  ];
  return rows.map(([name, type, help, value]) => {
    const full = `capra_cluster_${name}`;
    return `# HELP ${full} ${help}\n# TYPE ${full} ${type}\n${full} ${value}\n`;
  }).join("");
}
