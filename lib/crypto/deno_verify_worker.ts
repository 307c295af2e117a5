/**
 * Worker of the Deno verifier pool: checks Ed25519 signatures synchronously with
 * `node:crypto` (cheaper per signature than Web Crypto's asynchronous calls) and answers
 * one byte per job (1 valid, 0 not).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { Buffer } from "node:buffer";
import { createPublicKey, type KeyObject, verify } from "node:crypto";

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
const SPKI_PREFIX = [
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
];
const keys = new Map<string, KeyObject | null>();

function keyOf(raw: Uint8Array): KeyObject | null {
  let id = "";
  for (let i = 0; i < raw.length; i++) id += String.fromCharCode(raw[i]);
  let key = keys.get(id);
  if (key === undefined) {
    try {
      const der = new Uint8Array(44);
      der.set(SPKI_PREFIX);
      der.set(raw, 12);
      key = createPublicKey({
        key: Buffer.from(der),
        format: "der",
        type: "spki",
      });
    } catch {
      key = null;
    }
    if (keys.size > 10_000) keys.clear();
    keys.set(id, key);
  }
  return key;
}

self.onmessage = (e: MessageEvent) => {
  const { id, keys: pubs, sigs, msgs } = e.data as {
    id: number;
    keys: Uint8Array[];
    sigs: Uint8Array[];
    msgs: Uint8Array[];
  };
  const out = new Uint8Array(sigs.length);
  for (let i = 0; i < sigs.length; i++) {
    try {
      const key = pubs[i].length === 32 && sigs[i].length === 64
        ? keyOf(pubs[i])
        : null;
      out[i] = key && verify(null, msgs[i], key, sigs[i]) ? 1 : 0;
    } catch {
      out[i] = 0;
    }
  }
  self.postMessage({ id, out }, [out.buffer]);
};
