/**
 * A software WebAuthn authenticator for Deno tests: a P-256 (ES256) credential that
 * answers registration and authentication options the way a browser and a platform
 * authenticator would ("none" attestation, user present and verified, a counter), so
 * the server's passkey ceremonies can be tested without Chromium.
 */
import { encodeBase64Url } from "../lib/encoding/base64url.ts";

type CborValue = number | string | Uint8Array | Map<CborValue, CborValue>;

/** Minimal canonical CBOR: the integers, byte and text strings and maps WebAuthn uses. */
function cbor(v: CborValue): Uint8Array {
  const head = (major: number, n: number): number[] => {
    if (n < 24) return [(major << 5) | n];
    if (n < 256) return [(major << 5) | 24, n];
    if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
    throw new RangeError(`cbor: ${n} is too large for this encoder`);
  };
  const parts: number[][] = [];
  const put = (x: CborValue): void => {
    if (typeof x === "number") {
      parts.push(x >= 0 ? head(0, x) : head(1, -1 - x));
    } else if (typeof x === "string") {
      const b = new TextEncoder().encode(x);
      parts.push(head(3, b.length), [...b]);
    } else if (x instanceof Uint8Array) {
      parts.push(head(2, x.length), [...x]);
    } else {
      parts.push(head(5, x.size));
      for (const [k, val] of x) {
        put(k);
        put(val);
      }
    }
  };
  put(v);
  return Uint8Array.from(parts.flat());
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
}

/** An ECDSA signature of Web Crypto (r || s) as the DER sequence WebAuthn carries. */
function derSignature(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array): Uint8Array => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return v[0] & 0x80
      ? concat(Uint8Array.of(2, v.length + 1, 0), v)
      : concat(Uint8Array.of(2, v.length), v);
  };
  const body = concat(int(raw.subarray(0, 32)), int(raw.subarray(32)));
  return concat(Uint8Array.of(0x30, body.length), body);
}

/** What the server's options carry that an authenticator needs. */
export interface CeremonyOptions {
  readonly challenge: string;
  readonly rp?: { readonly id: string };
  readonly rpId?: string;
  readonly user?: { readonly id: string };
}

/** One resident ES256 passkey. */
export class SoftAuthenticator {
  #counter = 0;
  #userHandle: string | undefined;

  private constructor(
    readonly credentialId: Uint8Array,
    private readonly keys: CryptoKeyPair,
  ) {}

  /** A fresh authenticator holding one new key (registered by {@link register}). */
  static async create(): Promise<SoftAuthenticator> {
    const keys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    return new SoftAuthenticator(
      crypto.getRandomValues(new Uint8Array(16)),
      keys,
    );
  }

  #clientData(type: string, challenge: string, origin: string): Uint8Array {
    return new TextEncoder().encode(
      JSON.stringify({ type, challenge, origin, crossOrigin: false }),
    );
  }

  async #authData(rpId: string, flags: number, attested?: Uint8Array) {
    const count = new Uint8Array(4);
    new DataView(count.buffer).setUint32(0, this.#counter);
    return concat(
      await sha256(new TextEncoder().encode(rpId)),
      Uint8Array.of(flags),
      count,
      attested ?? new Uint8Array(0),
    );
  }

  /** The answer to registration options (`navigator.credentials.create`). */
  async register(options: CeremonyOptions, origin: string) {
    const raw = new Uint8Array(
      await crypto.subtle.exportKey("raw", this.keys.publicKey),
    );
    const cose = cbor(
      new Map<CborValue, CborValue>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, raw.subarray(1, 33)],
        [-3, raw.subarray(33, 65)],
      ]),
    );
    const idLength = Uint8Array.of(
      this.credentialId.length >> 8,
      this.credentialId.length & 255,
    );
    const attested = concat(
      new Uint8Array(16),
      idLength,
      this.credentialId,
      cose,
    );
    // user present (0x01), user verified (0x04), attested credential data (0x40)
    const authData = await this.#authData(options.rp!.id, 0x45, attested);
    const attestationObject = cbor(
      new Map<CborValue, CborValue>([
        ["fmt", "none"],
        ["attStmt", new Map()],
        ["authData", authData],
      ]),
    );
    this.#userHandle = options.user?.id;
    const id = encodeBase64Url(this.credentialId);
    return {
      id,
      rawId: id,
      type: "public-key",
      response: {
        clientDataJSON: encodeBase64Url(
          this.#clientData("webauthn.create", options.challenge, origin),
        ),
        attestationObject: encodeBase64Url(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: {},
    };
  }

  /** The answer to authentication options (`navigator.credentials.get`). */
  async authenticate(options: CeremonyOptions, origin: string) {
    this.#counter++;
    const authenticatorData = await this.#authData(options.rpId!, 0x05);
    const clientDataJSON = this.#clientData(
      "webauthn.get",
      options.challenge,
      origin,
    );
    const signed = concat(authenticatorData, await sha256(clientDataJSON));
    const signature = derSignature(
      new Uint8Array(
        await crypto.subtle.sign(
          { name: "ECDSA", hash: "SHA-256" },
          this.keys.privateKey,
          signed as Uint8Array<ArrayBuffer>,
        ),
      ),
    );
    const id = encodeBase64Url(this.credentialId);
    return {
      id,
      rawId: id,
      type: "public-key",
      response: {
        clientDataJSON: encodeBase64Url(clientDataJSON),
        authenticatorData: encodeBase64Url(authenticatorData),
        signature: encodeBase64Url(signature),
        ...(this.#userHandle ? { userHandle: this.#userHandle } : {}),
      },
      clientExtensionResults: {},
    };
  }
}
