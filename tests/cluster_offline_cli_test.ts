/**
 * An operator's command on a stopped cluster member (`capra user invite`, `capra
 * import`) writes commits no publisher saw: when the member starts again they must
 * reach the other members (the command marks their repositories in the member's dirty
 * set, and the member reconciles them at start).
 */
import assert from "node:assert/strict";
import { natsServerBinary, NO_NATS_SERVER } from "./_nats_cluster.ts";
import { eventually, startCluster } from "./_capra_cluster.ts";
import { capra } from "./_cli.ts";

const HAS_NATS = natsServerBinary() !== null;
if (!HAS_NATS) console.warn(NO_NATS_SERVER);

Deno.test({
  name:
    "cluster: a user invited on a stopped member reaches the other members when it starts again",
  ignore: !HAS_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const cluster = await startCluster({ members: 2, natsNodes: 1 });
  const [a, b] = cluster.members;
  try {
    await a.kill("SIGTERM");
    const invite = await capra(
      "user",
      "invite",
      a.options.dataDir,
      "offlinealice",
      "--root-key",
      cluster.rootKey,
    );
    assert.equal(invite.code, 0, invite.stderr);
    await a.start();
    await a.waitReady();
    const pending = async () => {
      const list = await capra(
        "user",
        "list",
        b.options.dataDir,
        "--json",
        "--root-key",
        cluster.rootKey,
      );
      assert.equal(list.code, 0, list.stderr);
      const listed = JSON.parse(list.stdout) as {
        invites: { name: string }[];
      };
      return listed.invites.some((i) => i.name === "offlinealice");
    };
    await eventually(
      pending,
      20_000,
      () => `b never got the invite written on the stopped member a`,
      500,
    );
  } finally {
    await cluster.stop();
  }
});
