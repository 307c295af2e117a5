/** The schema of the benchmark items: `{ text: string, done: boolean, n: number }`. */
import type { Schema } from "../mod.ts";

/** Benchmark item schema. */
export const BENCH_SCHEMA: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    n: { type: "number" },
  },
};
