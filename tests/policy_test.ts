/**
 * The policy config file (issue 11): parsing with clear errors, the demo default, the
 * shipped example, declarative rules as the server and clients apply them, and
 * `capra serve --config FILE` (plus the metrics flags) end to end.
 */

import assert from "node:assert/strict";
import { parsePolicy } from "../server/policy/parse_policy.ts";
import { defaultPolicy } from "../server/policy/apply_policy.ts";
import { DEFAULT_LIMITS } from "../server/limits/limits.ts";
import {
  compileRules,
  parseDeclaredRules,
  rulesFromPublished,
} from "../lib/sync/declared_rules.ts";
import { AccessRules, ANONYMOUS_READER } from "../lib/sync/rules.ts";
import { TODO_SCHEMA, TODO_SCHEMAS } from "../client/app/todo_schema.ts";
import type { SessionRecord } from "../testing.ts";
import { tempDir } from "./_helpers.ts";
import { freshKey, sessionRequest } from "./_attack.ts";

const EXAMPLE = new URL(
  "../server/policy/capra.config.example.json",
  import.meta.url,
);

function session(id: string, userId?: string): SessionRecord {
  return {
    id: id as never,
    publicKey: new Uint8Array(32),
    ...(userId ? { userId } : {}),
  };
}

Deno.test("policy: bad config entries are refused with the file, the entry and the value", () => {
  const cases: [unknown, RegExp][] = [
    [[], /cfg\.json: the config must be an object/],
    [{ rulez: [] }, /cfg\.json: the config: unknown key "rulez"/],
    [
      { rules: [{ pattern: "/todo/*", write: "everyone" }] },
      /rules\[0\]\.write must be "session", "user", "members", "root" or \{ "users": \[\.\.\.\] \}, got "everyone"/,
    ],
    [
      { rules: [{ pattern: "todo" }] },
      /rules\[0\]\.pattern must be a repository pattern/,
    ],
    [{ rules: [{ pattern: "/a/*", public: "yes" }] }, /rules\[0\]\.public/],
    [
      { rules: [{ pattern: "/a/*", read: { users: ["Bad Name"] } }] },
      /rules\[0\]\.read\.users: "Bad Name" is not a user name/,
    ],
    [
      { limits: { bodyTimeout: "soon" } },
      /limits\.bodyTimeout must be a duration/,
    ],
    [
      { limits: { inFlightBytes: -1 } },
      /limits\.inFlightBytes must be an integer > 0, got -1/,
    ],
    [{ limits: { bogus: 1 } }, /limits: unknown key "bogus"/],
    [
      { users: { signUp: "maybe" } },
      /users\.signUp must be "open", "invite" or "closed", got "maybe"/,
    ],
    [
      { users: { publicUrl: "ftp://x" } },
      /users\.publicUrl must be an http\(s\) URL/,
    ],
    [{ users: { inviteTtl: "soon" } }, /users\.inviteTtl must be a duration/],
    [
      { users: { signInPerNamePerMinute: 0 } },
      /users\.signInPerNamePerMinute must be an integer > 0/,
    ],
    [{ users: { passkeys: true } }, /users: unknown key "passkeys"/],
    [{ quotas: { commitsPerMinute: 1.5 } }, /quotas\.commitsPerMinute/],
    [
      { sessions: { anonymous: "no" } },
      /sessions\.anonymous must be true or false/,
    ],
    [{ sessions: { ttl: "forever" } }, /sessions\.ttl must be a duration/],
    [{ metrics: { token: "short" } }, /metrics\.token must be a string of 16/],
    [
      { schemas: [{ ns: "x", version: 1, fields: { a: { type: "blob" } } }] },
      /schemas\[0\]\.fields\.a\.type: unknown field type "blob"/,
    ],
    [
      { schemas: [{ ns: "X!", version: 1, fields: {} }] },
      /schemas\[0\]: Invalid schema/,
    ],
    [
      {
        schemas: [{
          ns: "x",
          version: 1,
          fields: { a: { type: "number", default: "zero" } },
        }],
      },
      /default of field "a"/,
    ],
  ];
  for (const [json, message] of cases) {
    assert.throws(() => parsePolicy(json, "cfg.json"), message);
  }
});

Deno.test("policy: values map onto the limits, the sessions and the rules", () => {
  const p = parsePolicy({
    schemas: [{
      ns: "post",
      version: 2,
      fields: {
        title: { type: "string", required: true },
        tags: { type: "set", default: ["new"] },
        at: { type: "date", default: "2026-01-01T00:00:00Z" },
      },
    }],
    rules: [{ pattern: "/blog/*", write: { users: ["alice"] }, public: true }],
    sessions: {
      anonymous: false,
      ttl: "2h",
      admins: ["root-user"],
      perAddressPerMinute: 5,
      perUserPerMinute: 3,
      collectAfter: "10m",
    },
    quotas: { commitsPerMinute: 100, bytesPerMinute: 1000 },
    limits: { headersTimeout: "300ms", wsPingInterval: 15_000 },
    metrics: { token: "0123456789abcdef" },
  }, "cfg.json");
  assert.equal(p.anonymousSessions, false);
  assert.equal(p.sessionTtlMs, 2 * 3_600_000);
  assert.deepEqual(p.admins, ["root-user"]);
  assert.equal(p.metricsToken, "0123456789abcdef");
  assert.equal(p.limits.sessionsPerAddressPerMinute, 5);
  assert.equal(p.limits.sessionsPerUserPerMinute, 3);
  assert.equal(p.limits.sessionCollectAfterMs, 600_000);
  assert.equal(p.limits.commitsPerSessionPerMinute, 100);
  assert.equal(p.limits.bytesPerSessionPerMinute, 1000);
  assert.equal(p.limits.headersTimeoutMs, 300);
  assert.equal(p.limits.wsPingIntervalMs, 15_000);
  assert.equal(p.limits.bodyTimeoutMs, DEFAULT_LIMITS.bodyTimeoutMs);
  const tags = p.schemas[0].fields.tags.default as Set<string>;
  assert.deepEqual([...tags], ["new"]);
  assert.ok(p.schemas[0].fields.at.default instanceof Date);
  assert.deepEqual(p.rules, [{
    pattern: "/blog/*",
    write: { users: ["alice"] },
    public: true,
  }]);
});

Deno.test("policy: the demo default and the shipped example", async () => {
  const d = defaultPolicy();
  assert.equal(d.anonymousSessions, true);
  assert.deepEqual(d.limits, DEFAULT_LIMITS);
  // The server knows the app's schema exactly as the app defines it.
  const todo = d.schemas.findLast((s) => s.ns === "todo")!;
  assert.equal(todo.version, TODO_SCHEMA.version);
  // ... and upgrades the app's old items as the app does.
  assert.deepEqual(
    d.schemas.filter((s) => s.ns === "todo").map((s) => s.version),
    TODO_SCHEMAS.map((s) => s.version),
  );
  for (const order of [0, 1, -3, 1024, 0.5, 2.75]) {
    const old = { text: "t", done: false, order, tags: new Set<string>() };
    assert.deepEqual(
      todo.upgrade!({ ...old }, 1),
      TODO_SCHEMA.upgrade!({ ...old }, 1),
    );
  }
  assert.deepEqual(
    Object.fromEntries(
      Object.entries(todo.fields).map((
        [k, f],
      ) => [k, [f.type, f.required, f.default]]),
    ),
    Object.fromEntries(
      Object.entries(TODO_SCHEMA.fields).map((
        [k, f],
      ) => [k, [f.type, f.required, f.default]]),
    ),
  );
  const example = parsePolicy(
    JSON.parse(await Deno.readTextFile(EXAMPLE)),
    "example",
  );
  assert.equal(example.rules.length, 6);
  assert.equal(example.users.signUp, "invite");
  assert.equal(d.users.signUp, "open");
  assert.ok(
    d.rules.some((r) => r.pattern === "/list/*" && r.read === "members"),
  );
  assert.deepEqual(example.limits, {
    ...DEFAULT_LIMITS,
    // The example states the defaults: nothing differs.
  });
});

Deno.test("declared rules: levels, public reads and the first matching rule", () => {
  const root = session("ROOT");
  const rules = new AccessRules(
    root.id,
    compileRules(parseDeclaredRules([
      { pattern: "/blog/*", write: { users: ["alice"] }, public: true },
      { pattern: "/team/*", read: "user", write: "user" },
      { pattern: "/locked/*", read: "root", write: "root" },
      { pattern: "/*/*", read: "session", write: "root" },
    ], "rules")),
  );
  const anon = session("anon-session"), alice = session("a", "alice");
  const bob = session("b", "bob");
  const can = (repo: string, s: SessionRecord, op: "read" | "write") =>
    rules.allows(repo as never, "k", s, op);
  assert.ok(can("/blog/x", ANONYMOUS_READER, "read"));
  assert.ok(!can("/blog/x", ANONYMOUS_READER, "write"));
  assert.ok(can("/blog/x", alice, "write") && !can("/blog/x", bob, "write"));
  assert.ok(can("/team/x", bob, "read") && !can("/team/x", anon, "read"));
  assert.ok(!can("/team/x", ANONYMOUS_READER, "read"), "not public");
  assert.ok(
    !can("/locked/x", alice, "read") && can("/locked/x", root, "write"),
  );
  assert.ok(can("/other/x", anon, "read") && !can("/other/x", anon, "write"));
  // Built-ins stay on top: /user/bob is bob's alone, never public.
  assert.ok(!can("/user/bob", alice, "read"));
  assert.ok(!can("/user/bob", ANONYMOUS_READER, "read"));
  assert.equal(rules.isPublic("/blog/x" as never), true);
  assert.equal(rules.isPublic("/team/x" as never), false);
  // What clients receive evaluates writes the same way.
  const client = new AccessRules(
    root.id,
    rulesFromPublished(rules.published()),
  );
  for (const repo of ["/blog/x", "/team/x", "/locked/x", "/other/x"]) {
    for (const s of [anon, alice, bob, root]) {
      assert.equal(
        client.allows(repo as never, "k", s, "write"),
        can(repo, s, "write"),
        `${repo} ${s.id}`,
      );
    }
  }
  assert.throws(
    () => rulesFromPublished([{ pattern: "/x/*", write: "all" }]),
    TypeError,
  );
});

async function serveWith(args: string[], dir: string) {
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "serve",
      "--dir",
      `${dir}/data`,
      "--port",
      "0",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 30_000;
  while (
    !/serving .* on http:\/\/[\d.]+:\d+/.test(out) && Date.now() < deadline
  ) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  // The metrics line (if any) follows the serving line at once.
  if (args.includes("--metrics-listen") && !/metrics on/.test(out)) {
    const { value } = await reader.read();
    out += value ?? "";
  }
  return {
    url: /serving .* on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1],
    metrics: /metrics on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1],
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      return (await child.status).code;
    },
  };
}

Deno.test("capra serve --config applies the policy; bad configs exit 2 naming the problem", async () => {
  await using dir = await tempDir();
  const cfg = `${dir.path}/capra.config.json`;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      schemas: [{ ns: "note", version: 1, fields: { t: { type: "string" } } }],
      rules: [
        { pattern: "/news/*", public: true },
        { pattern: "/*/*", read: "user", write: "user" },
      ],
      sessions: { anonymous: false },
      metrics: { token: "config-metrics-token" },
    }),
  );
  const s = await serveWith([
    "--config",
    cfg,
    "--metrics-listen",
    "127.0.0.1:0",
  ], dir.path);
  try {
    assert.ok(s.url, "serving");
    const news = await fetch(`${s.url}/v1/repos/news/today`);
    assert.deepEqual(await news.json(), {
      repo: "/news/today",
      count: 0,
      keys: [],
    });
    const other = await fetch(`${s.url}/v1/repos/todo/x`);
    assert.equal(other.status, 401);
    await other.body?.cancel();
    const anon = await fetch(
      `${s.url}/v1/sessions`,
      await sessionRequest(await freshKey()),
    );
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).code, "credentials_required");
    const metrics = await fetch(`${s.url}/metrics`, {
      headers: { authorization: "Bearer config-metrics-token" },
    });
    assert.match(await metrics.text(), /capra_sessions_issued_total/);
    assert.ok(s.metrics, "metrics address printed");
    const separate = await fetch(`${s.metrics}/metrics`);
    assert.match(await separate.text(), /capra_connected_clients/);
  } finally {
    assert.equal(await s.stop(), 0);
  }
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  await Deno.writeTextFile(cfg, JSON.stringify({ rules: [{ pattern: "/x" }] }));
  for (
    const [args, message] of [
      [["--config", cfg], /capra\.config\.json: rules\[0\]\.pattern/],
      [["--config", `${dir.path}/missing.json`], /Cannot read config file/],
      [["--metrics-listen", "nowhere"], /--metrics-listen: invalid address/],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "serve", "--dir", `${dir.path}/data`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), message);
  }
});
