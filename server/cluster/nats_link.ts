/**
 * The member's NATS connection: TCP (measured 7-10x faster than WebSocket, and its
 * consumers recover), every URL of the cluster so the client fails over between nodes,
 * unlimited reconnection, fast dead-connection detection (ping every 5 s), optional
 * credentials. Connecting is retried in the background until it works or the member
 * stops; state changes are logged and reported through `onReconnect`.
 *
 * @module
 */

import {
  connect,
  credsAuthenticator,
  type NatsConnection,
} from "@nats-io/transport-node";
import { MAX_COMMIT_RECORD_BYTES } from "../../lib/sync/protocol.ts";

/** Client ping interval (a dead connection is noticed after about 2 of them). */
export const NATS_PING_INTERVAL_MS = 5_000;
/** Pause between reconnection attempts to one node. */
export const NATS_RECONNECT_WAIT_MS = 250;
/** Room the stream message of a commit needs beside the commit record. */
const MESSAGE_OVERHEAD = 64 * 1024;

/** Connection state as `/healthz` shows it. */
export type NatsState = "connecting" | "connected" | "disconnected" | "closed";

/** What the link needs. */
export interface NatsLinkOptions {
  readonly servers: readonly string[];
  readonly name: string;
  readonly creds?: Uint8Array;
  readonly log: (line: string) => void;
  /** Called when the connection is lost. */
  readonly onDisconnect: () => void;
  /** Called after the connection was re-established. */
  readonly onReconnect: () => void;
}

/** One NATS connection with its state. */
export class NatsLink {
  #nc: NatsConnection | null = null;
  #state: NatsState = "connecting";
  #stopped = false;

  constructor(private readonly options: NatsLinkOptions) {}

  /** The connection, once connected. */
  get connection(): NatsConnection | null {
    return this.#nc;
  }

  get state(): NatsState {
    return this.#state;
  }

  /** Connects, retrying until it works; null when stopped first. */
  async open(): Promise<NatsConnection | null> {
    const { servers, log } = this.options;
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        const nc = await connect({
          servers: [...servers],
          name: this.options.name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: NATS_RECONNECT_WAIT_MS,
          waitOnFirstConnect: true,
          pingInterval: NATS_PING_INTERVAL_MS,
          maxPingOut: 2,
          // An Error per request for async stack traces cost ~40 us per publish.
          noAsyncTraces: true,
          ...(this.options.creds
            ? { authenticator: credsAuthenticator(this.options.creds) }
            : {}),
        });
        if (this.#stopped) {
          await nc.close();
          return null;
        }
        this.#nc = nc;
        this.#state = "connected";
        log(`cluster: connected to NATS ${nc.getServer()}`);
        const max = nc.info?.max_payload ?? 0;
        if (max < MAX_COMMIT_RECORD_BYTES + MESSAGE_OVERHEAD) {
          log(
            `cluster: warning: the NATS max_payload is ${max} bytes, so commits larger than about ${
              Math.floor((max - MESSAGE_OVERHEAD) / 1024)
            } KiB cannot replicate; set "max_payload: 8MB" in the nats-server configuration`,
          );
        }
        void this.#watch(nc);
        return nc;
      } catch (e) {
        if (attempt % 10 === 0) {
          log(
            `cluster: cannot connect to NATS ${servers.join(",")} (${
              (e as Error)?.message ?? e
            }); retrying`,
          );
        }
        await new Promise((r) =>
          setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5)))
        );
      }
    }
    return null;
  }

  async #watch(nc: NatsConnection): Promise<void> {
    const { log } = this.options;
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.#state = "disconnected";
          log(
            `cluster: lost the NATS connection to ${s.server}; reconnecting (local clients are served meanwhile)`,
          );
          this.options.onDisconnect();
          break;
        case "reconnect":
          this.#state = "connected";
          log(`cluster: reconnected to NATS ${s.server}`);
          this.options.onReconnect();
          break;
        case "close":
          this.#state = "closed";
          break;
      }
    }
  }

  /** Closes the connection (within 1 s). */
  async close(): Promise<void> {
    this.#stopped = true;
    const nc = this.#nc;
    if (nc && !nc.isClosed()) {
      await Promise.race([
        nc.close(),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
    }
    this.#state = "closed";
  }
}
