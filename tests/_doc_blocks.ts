/**
 * Extracts the TypeScript code blocks of Markdown files for tests/docs_test.ts. A block
 * is a fenced block whose info string starts with `ts` or `tsx`; words after the
 * language say how it runs:
 *
 * - (none): a Deno program of its own, run in a fresh directory;
 * - `continued`: the rest of the previous block's program (they run as one; in the
 *   browser when any of its blocks does);
 * - `browser`: a browser program, bundled and run in Chromium on a page served by a
 *   Capra server (tsx blocks always run in the browser).
 */

/** One runnable program made of one or more blocks. */
export interface DocProgram {
  /** `README.md:42` (file and first line of its first block). */
  readonly where: string;
  readonly runtime: "deno" | "browser";
  readonly lang: "ts" | "tsx";
  readonly source: string;
}

const FENCE = /^```(\S*)(.*)$/;

/** The programs of a Markdown text. */
export function docPrograms(file: string, markdown: string): DocProgram[] {
  const out: DocProgram[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i]);
    if (!m) continue;
    const lang = m[1];
    const flags = m[2].trim().split(/\s+/).filter(Boolean);
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end].startsWith("```")) end++;
    const body = lines.slice(start, end).join("\n");
    i = end;
    if (lang !== "ts" && lang !== "tsx") continue;
    for (const f of flags) {
      if (f !== "continued" && f !== "browser") {
        throw new SyntaxError(
          `${file}:${start}: unknown code block flag "${f}" (use continued or browser)`,
        );
      }
    }
    if (flags.includes("continued")) {
      const prev = out.pop();
      if (!prev) {
        throw new SyntaxError(
          `${file}:${start}: a "continued" block needs a block before it`,
        );
      }
      // A program with any browser part runs in the browser.
      const browser = flags.includes("browser") || lang === "tsx";
      out.push({
        ...prev,
        runtime: browser ? "browser" : prev.runtime,
        lang: lang === "tsx" ? "tsx" : prev.lang,
        source: `${prev.source}\n${body}`,
      });
      continue;
    }
    out.push({
      where: `${file}:${start}`,
      runtime: flags.includes("browser") || lang === "tsx" ? "browser" : "deno",
      lang,
      source: body,
    });
  }
  return out;
}
