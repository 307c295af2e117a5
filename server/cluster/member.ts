/**
 * A cluster member: the composition root of the bridge between one Capra server and the
 * NATS JetStream cluster it shares with other servers. It publishes every commit the
 * server accepts (publisher.ts), applies every commit the others published
 * (stream_follower.ts, stream_applier.ts), keeps its position (checkpoint.ts) and what
 * the stream may lack (dirty_set.ts), answers and asks other members (peer_*.ts,
 * reconciler.ts, repairs.ts), and says when it has caught up (`/healthz`).
 *
 * Lifecycle: `open()` reads the state files (before the app is built, so that commits
 * accepted at once are queued), `attach()` (called by createServer) hooks the sync
 * service, `start()` connects in the background (the server serves meanwhile), `stop()`
 * publishes what it can within a short grace time, writes the checkpoint and closes.
 *
 * @module
 */

import {
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { Database } from "../../mod.ts";
import type { SigningKey } from "../../lib/crypto/keys.ts";
import { encodeHex } from "../../lib/encoding/base64url.ts";
import type { RootSessionTrust } from "../../lib/sync/root_trust.ts";
import type { SessionService } from "../sessions.ts";
import type { SyncService } from "../sync_service.ts";
import {
  CheckpointKeeper,
  type CheckpointState,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";
import { DirtySet } from "./dirty_set.ts";
import type { ClusterOptions } from "./options.ts";
import { ClusterMetrics, renderClusterMetrics } from "./cluster_metrics.ts";
import { ClusterSubjects } from "./subjects.ts";
import { openStream } from "./stream.ts";
import { Publisher } from "./publisher.ts";
import { Inbound } from "./inbound.ts";
import { PeerService } from "./peer_service.ts";
import { PeerClient } from "./peer_client.ts";
import type { MemberInfo } from "./peer_protocol.ts";
import { Reconciler } from "./reconciler.ts";
import { type CatchUpPlan, reconcilePlan, replayPlan } from "./catch_up.ts";
import { outboundMessage, publishesOrigin, streamTarget } from "./outbound.ts";
import { Repairs } from "./repairs.ts";
import { NatsLink, type NatsState } from "./nats_link.ts";

/** Timeout of one publish or stream request (then it is retried). */
export const PUBLISH_TIMEOUT_MS = 2_000;
/** How long `stop()` waits for queued commits to reach the stream. */
export const STOP_GRACE_MS = 2_000;

/** What a member needs besides its options. */
export interface ClusterMemberDeps {
  readonly db: Database;
  /** The data directory (state files live there). */
  readonly dir: string;
  readonly root: SigningKey;
  readonly trust: RootSessionTrust;
  readonly options: ClusterOptions;
  /** One line per event (default: stderr). */
  readonly log?: (line: string) => void;
  /** Called when the member cannot run at all (stream settings, duplicate id). */
  readonly onFatal?: (error: Error) => void;
}

/** What `/healthz` reports. */
export interface ClusterHealth {
  readonly ready: boolean;
  readonly phase: "starting" | "catching_up" | "ready";
  readonly serverId: string;
  readonly stream: string;
  readonly nats: NatsState;
  readonly applied: number;
  readonly lag: number;
  readonly dirtyRepositories: number;
}

/** One Capra server's membership in a cluster. */
export class ClusterMember {
  readonly metrics = new ClusterMetrics();
  readonly subjects: ClusterSubjects;
  /** Random per process (tells two processes using one id apart). */
  readonly instance = encodeHex(crypto.getRandomValues(new Uint8Array(8)));
  readonly #deps: ClusterMemberDeps;
  readonly #log: (line: string) => void;
  #link: NatsLink | null = null;
  #serverId = "";
  #checkpoint: CheckpointState | null = null;
  #dirty: DirtySet | null = null;
  #publisher: Publisher | null = null;
  #sync: SyncService | null = null;
  #js: JetStreamClient | null = null;
  #stream: StreamInfo | null = null;
  #inbound: Inbound | null = null;
  #peerService: PeerService | null = null;
  #repairs: Repairs | null = null;
  #plan: CatchUpPlan | null = null;
  /** Set once the start-up reconciliation (if any) is over. */
  #reconciled = false;
  #ready = false;
  #startedAt = 0;
  #keeper: CheckpointKeeper | null = null;
  #stopped = false;
  #running: Promise<void> | null = null;

  constructor(deps: ClusterMemberDeps) {
    this.#deps = deps;
    this.#log = deps.log ?? ((line) => console.error(`capra: ${line}`));
    this.subjects = new ClusterSubjects(deps.options.stream);
  }

  get #nats(): NatsState {
    return this.#link?.state ?? "connecting";
  }

  /** This member's id. */
  get serverId(): string {
    return this.#serverId;
  }

  /** True once caught up with the cluster (stays true through NATS outages). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Reads the checkpoint and dirty set, decides the member id. Before the app is built. */
  async open(): Promise<void> {
    const { dir, options } = this.#deps;
    const read = await readCheckpoint(dir);
    if (read.problem) {
      this.#log(
        `cluster: ignoring a damaged checkpoint (${read.problem}): this member reconciles with another one`,
      );
    }
    this.#checkpoint = read.state;
    this.#serverId = options.serverId ?? read.state?.serverId ??
      `m-${encodeHex(crypto.getRandomValues(new Uint8Array(6)))}`;
    const { set, problem } = await DirtySet.load(dir);
    if (problem) {
      this.#log(
        `cluster: damaged dirty set (${problem}): every repository will be reconciled`,
      );
    }
    this.#dirty = set;
    this.#keeper = new CheckpointKeeper(
      dir,
      this.#serverId,
      () => this.#deps.db.flush(),
      this.#log,
    );
    this.#link = new NatsLink({
      servers: options.servers,
      name: `capra-${this.#serverId}`,
      ...(options.creds ? { creds: options.creds } : {}),
      log: this.#log,
      onDisconnect: () => this.#publisher?.suspectRecent(),
      onReconnect: () => {
        this.metrics.reconnects++;
        this.#inbound?.restart("reconnected to NATS");
        this.#publisher?.pump();
        this.#repairs?.reconnected();
      },
    });
    this.#publisher = new Publisher(
      streamTarget(
        () => this.#js,
        this.#serverId,
        () => this.#nats === "connected" && this.#stream !== null,
        PUBLISH_TIMEOUT_MS,
      ),
      set,
      this.metrics,
      this.#log,
    );
    if (read.state?.serverId !== this.#serverId) {
      // Keeps the id (and the position, if any) for the next start.
      await writeCheckpoint(dir, {
        ...read.state,
        serverId: this.#serverId,
        applied: read.state?.applied ?? 0,
      });
    }
  }

  /** Hooks the server's sync and session services (createServer calls it). */
  attach(services: { sync: SyncService; sessions: SessionService }): void {
    const publisher = this.#publisher;
    if (!publisher) throw new Error("Call ClusterMember.open() first");
    const { sync, sessions } = services;
    this.#sync = sync;
    sync.onAccepted((repo, ids, origin) => {
      if (!publishesOrigin(origin)) return;
      this.#repairs?.active(repo.path);
      for (const id of ids) {
        const message = outboundMessage(sync, repo, id);
        if (!message) continue;
        publisher.enqueue(
          repo.path,
          id,
          this.subjects.commits(repo.path),
          message,
        );
      }
    });
    // Loads /sys/sessions now: its watcher applies the revocations others publish.
    void sessions.ready().catch((e) =>
      this.#log(`cluster: loading sessions failed: ${(e as Error).message}`)
    );
  }

  /** Connects and catches up in the background; returns at once. */
  start(): void {
    if (this.#running) return;
    if (!this.#sync || !this.#link) {
      throw new Error("Call ClusterMember.open() and attach() first");
    }
    this.#startedAt = Date.now();
    this.#running = this.#run().catch((e) => {
      if (this.#stopped) return;
      this.#log(`cluster: cannot run: ${(e as Error)?.message ?? e}`);
      this.#deps.onFatal?.(e as Error);
    });
  }

  async #run(): Promise<void> {
    const nc = await this.#link!.open();
    if (!nc) return;
    this.#js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS });
    const jsm = await jetstreamManager(nc, {
      checkAPI: false,
      timeout: PUBLISH_TIMEOUT_MS,
    });
    const { options } = this.#deps;
    const info = await openStream(
      jsm,
      {
        name: options.stream,
        subject: this.subjects.allCommits,
        replicas: options.replicas,
        maxAgeMs: options.retainMs,
      },
      this.#log,
      () => this.#stopped,
    );
    if (!info) return;
    this.#stream = info;
    this.#keeper!.stream = { name: info.config.name, created: info.created };
    this.#publisher!.pump();
    const { db, root, trust } = this.#deps;
    const sync = this.#sync!;
    const dirty = this.#dirty!;
    const reconciler = new Reconciler(
      db,
      sync,
      new PeerClient(nc, this.subjects, {
        key: root,
        record: trust.encoded(trust.root.id)!,
      }),
      { id: this.#serverId, instance: this.instance },
      this.metrics,
      this.#log,
    );
    this.#peerService = new PeerService({
      nc,
      subjects: this.subjects,
      db,
      sync,
      trust,
      info: () => this.#memberInfo(),
      log: this.#log,
    });
    this.#peerService.start();
    const replay = replayPlan(this.#checkpoint, info);
    // Also tells a second process with this id before it does harm.
    const stopped = () => this.#stopped;
    const others = await reconciler.othersRetrying(stopped);
    if (!others) return;
    const peer = others[0];
    const plan = "gap" in replay
      ? reconcilePlan(info, peer, replay.gap)
      : replay;
    if (this.#stopped) return;
    // Persisted before any checkpoint of this plan: a crash meanwhile reconciles again.
    if (plan.reconcile) dirty.markAll();
    this.#plan = plan;
    this.#log(
      `cluster: member ${this.#serverId} follows stream ${info.config.name} (seq ${info.state.first_seq}-${info.state.last_seq}): ${plan.reason}`,
    );
    this.#inbound = new Inbound({
      db,
      sync,
      subjects: this.subjects,
      metrics: this.metrics,
      log: this.#log,
      js: this.#js,
      jsm,
      stream: info.config.name,
      keeper: this.#keeper!,
      dirty,
      connected: () => this.#nats === "connected",
      ready: () => this.#ready,
      onProgress: () => this.#checkReady(),
      onReconcileAll: () => this.#repairs?.wake(),
      onIngested: (repo) => this.#repairs?.active(repo),
    }, plan.startSeq);
    this.#inbound.start();
    await reconciler.reconcileAtStart(others, dirty, stopped);
    this.#reconciled = true;
    this.#checkReady();
    this.#repairs = new Repairs({
      db,
      reconciler,
      dirty,
      publisher: this.#publisher!,
      sync,
      subjects: this.subjects,
      connected: () => this.#nats === "connected",
      log: this.#log,
    });
    this.#repairs.start();
  }

  #memberInfo(): MemberInfo {
    return {
      id: this.#serverId,
      instance: this.instance,
      ready: this.#ready,
      applied: this.#inbound?.applied ?? 0,
    };
  }

  #checkReady(): void {
    const inbound = this.#inbound;
    if (this.#ready || !this.#plan || !this.#reconciled || !inbound) return;
    if (inbound.applied < this.#plan.target) return;
    this.#ready = true;
    this.#log(
      `cluster: member ${this.#serverId} is ready (caught up to seq ${inbound.applied} in ${
        Date.now() - this.#startedAt
      } ms)`,
    );
  }

  /** What `/healthz` shows. */
  health(): ClusterHealth {
    return {
      ready: this.#ready,
      phase: this.#ready ? "ready" : this.#plan ? "catching_up" : "starting",
      serverId: this.#serverId,
      stream: this.#deps.options.stream,
      nats: this.#nats,
      applied: this.#inbound?.applied ?? 0,
      lag: this.#lag(),
      dirtyRepositories: this.#dirty?.size ?? 0,
    };
  }

  #lag(): number {
    const inbound = this.#inbound;
    if (!inbound) return this.#plan?.target ?? 0;
    const behind = Math.max(0, (this.#plan?.target ?? 0) - inbound.applied);
    return Math.max(behind, inbound.pending);
  }

  /** The cluster series of `/metrics`. */
  metricsText(): string {
    return renderClusterMetrics(this.metrics, {
      connected: this.#nats === "connected",
      ready: this.#ready,
      lag: this.#lag(),
      applied: this.#inbound?.applied ?? 0,
      publishQueue: this.#publisher?.size ?? 0,
      dirtyRepositories: this.#dirty?.size ?? 0,
      failedRepositories: this.#dirty?.failed().length ?? 0,
    });
  }

  /**
   * Publishes what it can within {@link STOP_GRACE_MS}, stops consuming, writes the
   * checkpoint and closes the connection. Call before the database closes.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    if (this.#nats === "connected") {
      await this.#publisher?.drain(STOP_GRACE_MS);
    }
    this.#stopped = true;
    this.#repairs?.stop();
    this.#publisher?.close();
    await this.#inbound?.stop();
    this.#peerService?.stop();
    await this.#dirty?.close();
    await this.#link?.close();
  }
}
