/**
 * Batch signature verification: ingest hands every received commit's signature check to
 * a {@link SignatureVerifier}. The default uses Web Crypto (works everywhere); the Deno
 * entry plugs in a worker pool that is cheaper per signature (deno_verify_pool.ts).
 *
 * @module
 */

import { verifySignature } from "./keys.ts";

/** One Ed25519 check: `signature` over `message` by the raw 32-byte `publicKey`. */
export interface VerifyJob {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
}

/** Verifies many signatures; one boolean per job, in order. Never rejects on bad input. */
export interface SignatureVerifier {
  verifyBatch(jobs: readonly VerifyJob[]): Promise<boolean[]>;
  /** Gets ready for a large batch (e.g. starts workers) before a sync brings one. */
  prepare?(): void;
}

/** Web Crypto, one `crypto.subtle.verify` per job (the runtime spreads them on threads). */
export const webCryptoVerifier: SignatureVerifier = {
  verifyBatch(jobs) {
    return Promise.all(
      jobs.map((j) => verifySignature(j.publicKey, j.signature, j.message)),
    );
  },
};
