/**
 * The notes app's schema and repository: one shared notebook of notes, each with a
 * title, a body merged character by character (two people typing in one note keep
 * both their words), a pin and the time of the last edit.
 *
 * @module
 */

import { defineSchema } from "@capra/capra/client";

/** A note. */
export const noteSchema = defineSchema(
  {
    ns: "note",
    version: 1,
    fields: {
      title: {
        type: "string",
        required: true,
        validate: (t: string) => t.length <= 200 || "at most 200 characters",
      },
      body: { type: "text", default: "" },
      pinned: { type: "boolean", default: false },
      updated: { type: "date", required: true },
    },
  } as const,
);

/** The notebook every browser of the app shares. */
export const NOTEBOOK = "/note/shared";
