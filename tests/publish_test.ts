import assert from "node:assert/strict";

// The package must stay publishable to JSR: type-checks with the published config, no
// slow types in the public API, only the library files included.
Deno.test("deno publish --dry-run passes and ships only the library", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /Dry run complete/);
  assert.match(text, /mod\.ts/);
  assert.match(text, /server\/mod\.ts/);
  assert.match(text, /client\/mod\.ts/);
  for (const excluded of [/tests\//, /scripts\//, /\.ci\//, /_test\.ts/]) {
    assert.doesNotMatch(
      text.split("\n").filter((l) => l.includes("file://")).join("\n"),
      excluded,
    );
  }
});
