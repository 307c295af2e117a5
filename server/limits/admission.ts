/**
 * Admission control: past its capacity the server refuses new work instead of
 * collapsing, so the clients it already serves keep their latency. Capacity is read
 * from the event loop itself ({@link LoopLagMonitor}: how late a periodic timer fires,
 * the median of the last second, counted only while the process itself is busy, at least
 * {@link ADMISSION_MIN_CPU_SHARE} of a core: a loop that is late because other processes
 * took the CPU is not this server's overload) and from the number of ingests in flight.
 * Over the
 * connection threshold, new connections are refused (503 with Retry-After, before the
 * request is relayed; health and metrics probes excepted); over the write threshold,
 * messages carrying commits are refused too (503 `server_busy` with Retry-After; a
 * WebSocket client reconciles after that delay, so nothing is lost).
 *
 * @module
 */

import process from "node:process";
import { HttpError } from "../errors.ts";

/** Period of the event-loop lag probe. */
export const LAG_SAMPLE_MS = 20;
/** Samples the lag median is taken over (one second). */
export const LAG_WINDOW_SAMPLES = 50;
/** Retry-After of refusals, in seconds. */
export const ADMISSION_RETRY_AFTER_S = 2;
/** Share of a core the process must use for its lag to count as overload. */
export const ADMISSION_MIN_CPU_SHARE = 0.5;
/** Paths a new connection may still request past capacity (probes). */
export const ALWAYS_ADMITTED_PATHS: readonly string[] = [
  "/healthz",
  "/metrics",
];

/** Measures how late the event loop runs a periodic timer. */
export class LoopLagMonitor {
  readonly #samples = new Float64Array(LAG_WINDOW_SAMPLES);
  #count = 0;
  #median = 0;
  #max = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expected = 0;
  #cpuAt = 0;
  #cpuUsed = 0;
  #cpuShare = 0;

  /** Starts probing (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#expected = performance.now() + LAG_SAMPLE_MS;
    this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#tick(), LAG_SAMPLE_MS);
    const unref = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
      .Deno?.unrefTimer;
    if (typeof this.#timer === "number") unref?.(this.#timer);
  }

  #tick(): void {
    const now = performance.now();
    if (now - this.#cpuAt >= 1000) {
      const u = process.cpuUsage();
      const used = (u.user + u.system) / 1000;
      if (this.#cpuAt) {
        this.#cpuShare = (used - this.#cpuUsed) / (now - this.#cpuAt);
      }
      this.#cpuAt = now;
      this.#cpuUsed = used;
    }
    this.record(Math.max(0, now - this.#expected));
    this.#expected = now + LAG_SAMPLE_MS;
    this.#arm();
  }

  /** Adds one lag sample (the timer does; tests may). */
  record(lagMs: number): void {
    this.#samples[this.#count++ % LAG_WINDOW_SAMPLES] = lagMs;
    const n = Math.min(this.#count, LAG_WINDOW_SAMPLES);
    const sorted = Array.from(this.#samples.subarray(0, n)).sort((a, b) =>
      a - b
    );
    this.#median = sorted[Math.floor(n / 2)];
    this.#max = sorted[n - 1];
  }

  /** Median lag of the last second (ms). */
  get medianMs(): number {
    return this.#median;
  }

  /** Share of one core the process used over the last second or so. */
  get cpuShare(): number {
    return this.#cpuShare;
  }

  /** Sets the CPU share (tests). */
  set cpuShare(share: number) {
    this.#cpuShare = share;
  }

  /** Median lag of the last second while the process is busy, else 0 (ms). */
  get busyLagMs(): number {
    return this.#cpuShare >= ADMISSION_MIN_CPU_SHARE ? this.#median : 0;
  }

  /** Largest lag of the last second (ms). */
  get maxMs(): number {
    return this.#max;
  }

  /** Stops probing. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Thresholds of {@link Admission}. */
export interface AdmissionLimits {
  /** Median event-loop lag above which new connections are refused. */
  readonly connectLagMs: number;
  /** Median event-loop lag above which writes are refused. */
  readonly writeLagMs: number;
  /** Ingests in flight above which writes are refused (new connections at half). */
  readonly maxIngestsInFlight: number;
}

/** Decides, from the load, whether new connections and writes are taken. */
export class Admission {
  #ingests = 0;

  constructor(
    readonly lag: LoopLagMonitor,
    private readonly limits: AdmissionLimits,
  ) {}

  /** Messages with commits being ingested now. */
  get ingestsInFlight(): number {
    return this.#ingests;
  }

  /** True while new connections are taken. */
  get acceptsConnections(): boolean {
    return this.lag.busyLagMs <= this.limits.connectLagMs &&
      this.#ingests <= this.limits.maxIngestsInFlight / 2;
  }

  /** True while writes are taken. */
  get acceptsWrites(): boolean {
    return this.lag.busyLagMs <= this.limits.writeLagMs &&
      this.#ingests < this.limits.maxIngestsInFlight;
  }

  /** Throws a 503 `server_busy` with Retry-After when writes are not taken now. */
  checkWrite(): void {
    if (this.acceptsWrites) return;
    throw new HttpError(
      503,
      "server_busy",
      `Server over capacity (event-loop lag ${
        this.lag.medianMs.toFixed(0)
      } ms, ${this.#ingests} ingests in flight): retry in ${ADMISSION_RETRY_AFTER_S} s`,
      { "retry-after": String(ADMISSION_RETRY_AFTER_S) },
    );
  }

  /** Counts an ingest until the returned function is called. */
  beginIngest(): () => void {
    this.#ingests++;
    let done = false;
    return () => {
      if (!done) this.#ingests--;
      done = true;
    };
  }

  /**
   * The raw response refusing a new connection's first request past capacity, or
   * undefined to admit it (probes always are).
   */
  refusalFor(path: string): Uint8Array | undefined {
    if (this.acceptsConnections) return undefined;
    const bare = path.split("?")[0];
    if (ALWAYS_ADMITTED_PATHS.includes(bare)) return undefined;
    const body = JSON.stringify({
      code: "server_busy",
      message: `Server over capacity: retry in ${ADMISSION_RETRY_AFTER_S} s`,
    });
    return new TextEncoder().encode(
      `HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n` +
        `content-type: application/json\r\nretry-after: ${ADMISSION_RETRY_AFTER_S}\r\n` +
        `content-length: ${body.length}\r\n\r\n${body}`,
    );
  }
}
