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
  /** New connections refused by admission control (503, past capacity). */
  connectionsShed = 0;
  /** Writes (messages with commits) refused by admission control (503). */
  writesShed = 0;
  /** Commits pushed, counted once per receiving socket. */
  pushDeliveries = 0;
  /** Push messages encoded (each sent to every socket that may read it). */
  pushMessages = 0;
  /** Commits left out of pushes to sockets over their buffer bound. */
  pushesSkipped = 0;
  /** Times a socket went over its buffer bound. */
  socketsLagged = 0;
  /** Catch-up signals sent (the client reconciles what it missed). */
  catchUps = 0;
  /** Sockets closed to catch up (clients without the catch-up signal). */
  catchUpCloses = 0;
  /** Sockets closed for staying stuck over their buffer bound. */
  stuckCloses = 0;
  /** Gauges the server adds to every rendering (flow control, load). */
  moreGauges: () => {
    laggingClients?: number;
    unsentPushBytes?: number;
    eventLoopLagMs?: number;
    ingestsInFlight?: number;
  } = () => ({});

  /** Prometheus exposition text, with the current gauges. */
  render(
    gauges: {
      connectedClients: number;
      openRepositories: number;
      heapUsedBytes?: number;
      rssBytes?: number;
      laggingClients?: number;
      unsentPushBytes?: number;
      eventLoopLagMs?: number;
      ingestsInFlight?: number;
    },
  ): string {
    gauges = { ...this.moreGauges(), ...gauges };
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
        "capra_connections_shed_total",
        "counter",
        "New connections refused past capacity (503)",
        this.connectionsShed,
      ],
      [
        "capra_writes_shed_total",
        "counter",
        "Writes refused past capacity (503)",
        this.writesShed,
      ],
      [
        "capra_push_deliveries_total",
        "counter",
        "Commits pushed, once per receiving socket",
        this.pushDeliveries,
      ],
      [
        "capra_push_messages_total",
        "counter",
        "Push messages encoded (each shared by its receivers)",
        this.pushMessages,
      ],
      [
        "capra_pushes_skipped_total",
        "counter",
        "Commits left out for sockets over their buffer bound",
        this.pushesSkipped,
      ],
      [
        "capra_sockets_lagged_total",
        "counter",
        "Times a socket went over its buffer bound",
        this.socketsLagged,
      ],
      [
        "capra_catch_ups_total",
        "counter",
        "Catch-up signals sent to sockets that drained",
        this.catchUps,
      ],
      [
        "capra_catch_up_closes_total",
        "counter",
        "Sockets closed to reconnect and catch up (clients without the signal)",
        this.catchUpCloses,
      ],
      [
        "capra_stuck_closes_total",
        "counter",
        "Sockets closed for staying over their buffer bound without draining",
        this.stuckCloses,
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
    const optional: [string, string, number | undefined][] = [
      [
        "capra_lagging_clients",
        "Sockets getting no pushes now (over their buffer bound)",
        gauges.laggingClients,
      ],
      [
        "capra_unsent_push_bytes",
        "Bytes queued on sockets, not yet sent",
        gauges.unsentPushBytes,
      ],
      [
        "capra_event_loop_lag_ms",
        "Event-loop lag (median of the last second)",
        gauges.eventLoopLagMs,
      ],
      [
        "capra_ingests_in_flight",
        "Messages with commits being ingested",
        gauges.ingestsInFlight,
      ],
    ];
    for (const [name, help, value] of optional) {
      if (value !== undefined) rows.push([name, "gauge", help, value]);
    }
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
