/**
 * Sync over HTTP request rounds: each message is one `POST /v1/sync/:type/:repo` with an
 * `application/octet-stream` body; the answer is the response body.
 *
 * @module
 */

import { decodeSyncMessage } from "./protocol.ts";
import { SyncError, type SyncTransport } from "./sync_round.ts";

/** A fetch-compatible function (tests pass a Hono app's `request`). */
export type FetchLike = (
  input: string,
  init: RequestInit,
) => Promise<Response> | Response;

/** Produces the signed-request headers of a request. */
export type RequestSigner = (
  method: string,
  path: string,
  body: Uint8Array,
) => Promise<Record<string, string>>;

/** HTTP transport for one repository. */
export class HttpSyncTransport implements SyncTransport {
  constructor(
    readonly baseUrl: string,
    readonly repo: string,
    private readonly fetchFn: FetchLike = fetch,
    private readonly headers: () => HeadersInit = () => ({}),
    /** Signs each request (see request_signing.ts); unsigned when absent. */
    private readonly sign?: RequestSigner,
  ) {}

  async request(message: Uint8Array): Promise<Uint8Array> {
    const path = `/v1/sync${this.repo}`;
    const url = `${this.baseUrl.replace(/\/$/, "")}${path}`;
    const signed = this.sign ? await this.sign("POST", path, message) : {};
    const res = await this.fetchFn(url, {
      method: "POST",
      headers: {
        "content-type": "application/octet-stream",
        ...this.headers(),
        ...signed,
      },
      body: message as Uint8Array<ArrayBuffer>,
    });
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) {
      let detail = `HTTP ${res.status}`;
      try {
        const j = JSON.parse(new TextDecoder().decode(body));
        detail = `${j.code}: ${j.message}`;
      } catch { /* not JSON */ }
      throw new SyncError(
        `http_${res.status}`,
        `Sync of ${this.repo} failed: ${detail}`,
      );
    }
    decodeSyncMessage(body); // validate before handing it on
    return body;
  }
}
