/**
 * One opener per data directory: processes racing on a fresh directory (exactly one
 * wins, every round), openers racing inside one process, the lock of a killed process
 * (recovered), a stale lock file of an older version, and a second `capra serve` on a
 * held directory (exit 1, one line naming the directory and the holder's pid).
 */

import assert from "node:assert/strict";
import { FileStorage, LOCK_FILE } from "../lib/storage/file_storage.ts";
import { DirectoryLockedError } from "../lib/storage/storage.ts";
import { tempDir } from "./_helpers.ts";

const racer = new URL("./fixtures/lock_racer.ts", import.meta.url).pathname;
const main = new URL("../server/main.ts", import.meta.url).pathname;
const RACERS = 3;
const ROUNDS = Number(Deno.env.get("CAPRA_LOCK_ROUNDS") ?? 40);
/** How far ahead the racers are told to start together. */
const START_AHEAD_MS = 40;

/** A child process read line by line. */
class Child {
  readonly process: Deno.ChildProcess;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  constructor(args: string[], stdin = true) {
    this.process = new Deno.Command(Deno.execPath(), {
      args,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = stdin
      ? this.process.stdin.getWriter()
      : new WritableStream<Uint8Array>().getWriter();
    void this.#read(this.process.stdout);
  }
  async #read(stream: ReadableStream<Uint8Array<ArrayBuffer>>): Promise<void> {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      this.#lines.push(...lines);
      for (const w of this.#waiters.splice(0)) w();
    }
    for (const w of this.#waiters.splice(0)) w();
  }
  send(line: string): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }
  /** The next line (waits at most `ms`). */
  async line(ms = 60_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!this.#lines.length) {
      if (Date.now() > deadline) throw new Error("no line from the child");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, 200);
      });
      clearTimeout(timer);
    }
    return this.#lines.shift()!;
  }
  async stop(): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#writer.close().catch(() => {});
    await this.process.stderr.cancel().catch(() => {});
    await this.process.status;
  }
}

Deno.test(`${RACERS} processes racing for a fresh directory: exactly one wins, ${ROUNDS} rounds`, async () => {
  await using root = await tempDir();
  const children = Array.from(
    { length: RACERS },
    () => new Child(["run", "-A", racer]),
  );
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const dir = `${root.path}/round-${round}`; // not created: racers make it
      const at = Date.now() + START_AHEAD_MS;
      await Promise.all(children.map((c) => c.send(`go ${dir} ${at}`)));
      const results = await Promise.all(children.map((c) => c.line()));
      const winners = results.filter((r) => r.startsWith("won "));
      assert.equal(winners.length, 1, `round ${round}: ${results.join(" | ")}`);
      const winnerPid = children[results.indexOf(winners[0])].process.pid;
      for (const r of results) {
        if (r.startsWith("won ")) continue;
        assert.equal(
          r,
          `lost ${dir} Cannot open database "${dir}": it is locked by process ${winnerPid}`,
          `round ${round}`,
        );
      }
      await Promise.all(children.map((c) => c.send("release")));
      for (const c of children) assert.equal(await c.line(), "released");
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
});

Deno.test("openers racing inside one process: exactly one wins; the others name this process", async () => {
  await using root = await tempDir();
  for (let round = 0; round < 20; round++) {
    const dir = `${root.path}/r${round}`;
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => FileStorage.open(dir)),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, `round ${round}`);
    for (const r of results) {
      if (r.status === "fulfilled") continue;
      assert.ok(r.reason instanceof DirectoryLockedError, String(r.reason));
      assert.equal(r.reason.pid, Deno.pid);
      assert.match(r.reason.message, /this process: close the other Database/);
    }
    await (won[0] as PromiseFulfilledResult<FileStorage>).value.close();
    await (await FileStorage.open(dir)).close(); // free again
  }
});

Deno.test("the lock of a killed process is recovered, and so is a stale lock file", async () => {
  await using dir = await tempDir();
  const holder = new Child(["run", "-A", racer]);
  try {
    await holder.send(`hold ${dir.path}`);
    assert.equal(await holder.line(), "holding");
    await assert.rejects(
      FileStorage.open(dir.path),
      new RegExp(`locked by process ${holder.process.pid}$`),
    );
  } finally {
    await holder.stop(); // SIGKILL: no cleanup ran
  }
  assert.equal(
    (await Deno.readTextFile(`${dir.path}/${LOCK_FILE}`)).trim(),
    String(holder.process.pid),
    "the dead holder's lock file is still there",
  );
  const storage = await FileStorage.open(dir.path);
  assert.equal(
    (await Deno.readTextFile(`${dir.path}/${LOCK_FILE}`)).trim(),
    String(Deno.pid),
  );
  await storage.close();
  // A lock file left by an older version (a pid, no OS lock) does not block either.
  await Deno.writeTextFile(`${dir.path}/${LOCK_FILE}`, "999999");
  await (await FileStorage.open(dir.path)).close();
});

Deno.test("a second serve on a held directory exits 1 with one line naming the directory and the holder's pid", async () => {
  await using dir = await tempDir();
  const data = `${dir.path}/data`;
  const args = [
    "run",
    "-A",
    main,
    "serve",
    "--dir",
    data,
    "--port",
    "0",
    "--root-key",
    `${dir.path}/root.key`,
  ];
  const first = new Child(args, false);
  try {
    assert.match(await first.line(), /^capra: serving /);
    const second = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(second.stderr);
    assert.equal(second.code, 1, stderr);
    assert.equal(
      stderr,
      `capra serve: Cannot open database "${data}": it is locked by process ${first.process.pid}\n`,
    );
  } finally {
    await first.stop();
  }
});
