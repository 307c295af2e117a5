/**
 * A failed password sign-in does not tell whether the name exists: the same status, code
 * and message for an unknown name, a removed user and a wrong password, and response
 * times whose distributions are indistinguishable. The attempts of the groups are
 * interleaved in a seeded random order (so load on the shared machine hits every group
 * alike) and compared with a Mann-Whitney U test and by their medians; an unknown name
 * that skipped the scrypt work would answer about a hundred times faster.
 */
import assert from "node:assert/strict";
import { signSessionRequest } from "../lib/sync/session_request.ts";
import { freshKey } from "./_attack.ts";
import { seedFor, uint32Source } from "./_seed.ts";
import { signedIn } from "./_users.ts";
import { secureServer } from "./_sync_server.ts";

/** Attempts per group. */
const ATTEMPTS = 60;
/** |z| of the Mann-Whitney U statistic beyond which the groups differ (p ≈ 1e-4). */
const MAX_Z = 3.9;

/** z of the Mann-Whitney U statistic of two samples (ties get mid-ranks). */
function mannWhitneyZ(a: number[], b: number[]): number {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))]
    .sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    for (let k = i; k <= j; k++) ranks[k] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let ra = 0;
  all.forEach((x, i) => {
    if (x.g === 0) ra += ranks[i];
  });
  const n1 = a.length, n2 = b.length;
  const u = ra - n1 * (n1 + 1) / 2;
  const mean = n1 * n2 / 2;
  const sd = Math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12);
  return (u - mean) / sd;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
}

Deno.test("users: failed sign-ins look the same, in answer and in time, whether the name exists or not", async () => {
  const seed = seedFor("sign-in timing");
  const next = uint32Source(seed);
  const server = await secureServer({
    users: { signUp: "open", scryptLog2N: 12 },
  });
  await signedIn(server, {
    method: "sign-up",
    name: "alice",
    password: "alice-password",
  });
  await signedIn(server, {
    method: "sign-up",
    name: "gone",
    password: "gone-password",
  });
  await server.users!.removeUser("gone");
  const groups = {
    known: "alice",
    removed: "gone",
    unknown: "nobody-here",
  } as const;
  type Group = keyof typeof groups;
  const order: Group[] = [];
  for (const g of Object.keys(groups) as Group[]) {
    for (let i = 0; i < ATTEMPTS; i++) order.push(g);
  }
  for (let i = order.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const times: Record<Group, number[]> = {
    known: [],
    removed: [],
    unknown: [],
  };
  const answers = new Set<string>();
  const key = await freshKey();
  // Warm-up: the first requests pay for compilation and caches.
  for (let i = 0; i < 5; i++) order.unshift(order[i]);
  let warm = 5;
  for (const g of order) {
    const { body, headers } = await signSessionRequest(key, {
      extra: {
        signIn: {
          method: "password",
          name: groups[g],
          password: "wrong-guess",
        },
      },
    });
    const t0 = performance.now();
    const res = await server.app.request("/v1/sessions", {
      method: "POST",
      headers,
      body: body as Uint8Array<ArrayBuffer>,
    });
    const j = await res.json();
    const dt = performance.now() - t0;
    answers.add(`${res.status} ${j.code} ${j.message}`);
    if (warm > 0) warm--;
    else times[g].push(dt);
  }
  assert.deepEqual([...answers], [
    "401 bad_credentials Sign-in failed: unknown user, wrong password or passkey",
  ]);
  const m = Object.fromEntries(
    (Object.keys(times) as Group[]).map((g) => [g, median(times[g])]),
  );
  const zUnknown = mannWhitneyZ(times.known, times.unknown);
  const zRemoved = mannWhitneyZ(times.known, times.removed);
  console.log(
    `medians (ms): known ${m.known.toFixed(2)}, unknown ${
      m.unknown.toFixed(2)
    }, removed ${m.removed.toFixed(2)}; z known/unknown ${
      zUnknown.toFixed(2)
    }, known/removed ${zRemoved.toFixed(2)}`,
  );
  assert.ok(Math.abs(zUnknown) < MAX_Z, `known vs unknown: z = ${zUnknown}`);
  assert.ok(Math.abs(zRemoved) < MAX_Z, `known vs removed: z = ${zRemoved}`);
  for (const g of ["unknown", "removed"] as const) {
    const ratio = m[g] / m.known;
    assert.ok(ratio > 0.67 && ratio < 1.5, `median ${g}/known = ${ratio}`);
  }
  await server.db.close();
});
