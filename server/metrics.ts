/**
 * Server counters rendered as Prometheus text (`GET /metrics`), series prefixed `capra_`.
 *
 * @module
 */

/** Counters of a running server. */
export class ServerMetrics {
  commitsAccepted = 0;
  commitsRejected = 0;
  syncRounds = 0;
  bytesIn = 0;
  bytesOut = 0;
  sessionsIssued = 0;
  requestsRefused = 0;
  /** Requests refused by a rate limit or quota (429). */
  requestsThrottled = 0;
  /** Requests refused because the in-flight byte budget was exhausted (503). */
  requestsShed = 0;
  /** Session records collected after their expiry. */
  sessionsCollected = 0;
  /** Connections refused at accept (per-address or total cap). */
  connectionsRefused = 0;
  /** Connections closed for a header, body or keep-alive timeout. */
  connectionsTimedOut = 0;

  /** Prometheus exposition text, with the current gauges. */
  render(
    gauges: {
      connectedClients: number;
      openRepositories: number;
      heapUsedBytes?: number;
      rssBytes?: number;
    },
  ): string {
    const rows: [string, "counter" | "gauge", string, number][] = [
      [
        "capra_commits_accepted_total",
        "counter",
        "Commits accepted from peers",
        this.commitsAccepted,
      ],
      [
        "capra_commits_rejected_total",
        "counter",
        "Commits refused",
        this.commitsRejected,
      ],
      ["capra_sync_rounds_total", "counter", "Sync rounds", this.syncRounds],
      ["capra_bytes_in_total", "counter", "Sync bytes received", this.bytesIn],
      ["capra_bytes_out_total", "counter", "Sync bytes sent", this.bytesOut],
      [
        "capra_sessions_issued_total",
        "counter",
        "Sessions issued",
        this.sessionsIssued,
      ],
      [
        "capra_requests_refused_total",
        "counter",
        "Requests refused (authentication, authorization)",
        this.requestsRefused,
      ],
      [
        "capra_requests_throttled_total",
        "counter",
        "Requests refused by a rate limit or quota (429)",
        this.requestsThrottled,
      ],
      [
        "capra_requests_shed_total",
        "counter",
        "Requests refused for lack of in-flight byte budget (503)",
        this.requestsShed,
      ],
      [
        "capra_sessions_collected_total",
        "counter",
        "Expired session records collected",
        this.sessionsCollected,
      ],
      [
        "capra_connections_refused_total",
        "counter",
        "Connections refused at accept (per-address or total cap)",
        this.connectionsRefused,
      ],
      [
        "capra_connections_timed_out_total",
        "counter",
        "Connections closed for a header, body or keep-alive timeout",
        this.connectionsTimedOut,
      ],
      [
        "capra_connected_clients",
        "gauge",
        "Open WebSocket connections",
        gauges.connectedClients,
      ],
      [
        "capra_open_repositories",
        "gauge",
        "Open repositories",
        gauges.openRepositories,
      ],
    ];
    if (gauges.heapUsedBytes !== undefined) {
      rows.push([
        "capra_heap_used_bytes",
        "gauge",
        "JavaScript heap in use",
        gauges.heapUsedBytes,
      ]);
    }
    if (gauges.rssBytes !== undefined) {
      rows.push([
        "capra_resident_memory_bytes",
        "gauge",
        "Resident set size",
        gauges.rssBytes,
      ]);
    }
    return rows.map(([name, type, help, value]) =>
      `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`
    ).join("");
  }
}
