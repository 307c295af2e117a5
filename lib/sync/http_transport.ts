/**
 * Sync over HTTP request rounds: each message is one `POST /v1/sync/:type/:repo` with an
 * `application/octet-stream` body; the answer is the response body.
 *
 * @module
 */

import { decodeAnswer, SyncError, type SyncTransport } from "./sync_round.ts";

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
    private readonly fetchFn: FetchLike = (url, init) => fetch(url, init),
    private readonly headers: () => HeadersInit = () => ({}),
    /** Signs each request (see request_signing.ts); unsigned when absent. */
    private readonly sign?: RequestSigner,
    /** Obtains a new session when the server answers `session_expired` (one retry). */
    private readonly renewSession?: () => Promise<void>,
  ) {}

  async request(message: Uint8Array): Promise<Uint8Array> {
    try {
      return await this.#request(message);
    } catch (e) {
      if (
        !(e instanceof SyncError) || e.serverCode !== "session_expired" ||
        !this.renewSession
      ) throw e;
      await this.renewSession();
      return await this.#request(message);
    }
  }

  async #request(message: Uint8Array): Promise<Uint8Array> {
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
      let code: string | undefined;
      try {
        const j = JSON.parse(new TextDecoder().decode(body));
        detail = `${j.code}: ${j.message}`;
        if (typeof j.code === "string") code = j.code;
      } catch { /* not JSON */ }
      throw new SyncError(
        `http_${res.status}`,
        `Sync of ${this.repo} failed: ${detail}`,
        code,
      );
    }
    decodeAnswer(body); // validate before handing it on (the sync loop reuses it)
    return body;
  }
}
