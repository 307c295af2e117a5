/**
 * Reads and validates a policy config file (JSON). Every mistake is reported with the
 * file, the path of the bad entry and the value: `capra.config.json: limits.bodyTimeout
 * must be a duration like "30s" or milliseconds, got "soon"`. Unknown keys are refused,
 * so a typo never silently leaves a default in place.
 *
 * @module
 */

import type { FieldDef, Schema } from "../../lib/schema/schema.ts";
import { validateSchemaDefinition } from "../../lib/schema/schema.ts";
import { isFieldType } from "../../lib/schema/field_types.ts";
import { parseDeclaredRules } from "../../lib/sync/declared_rules.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "../limits/limits.ts";
import { DEFAULT_SESSION_TTL_MS } from "../sessions.ts";
import type { ServerPolicy, UserPolicy } from "./policy.ts";
import { DEFAULT_INVITE_TTL_MS } from "../users/invites.ts";

/** Largest config file read. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

type Json = Record<string, unknown>;

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "…" : s;
}

function objectAt(v: unknown, where: string): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`${where} must be an object, got ${show(v)}`);
  }
  return v as Json;
}

function onlyKeys(o: Json, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new TypeError(
        `${where}: unknown key "${k}" (expected ${keys.join(", ")})`,
      );
    }
  }
}

/** A duration: milliseconds, or a string like "300ms", "10s", "5m", "24h", "30d". */
export function parseDurationMs(v: unknown, where: string): number {
  if (typeof v === "number" && Number.isFinite(v) && v > 0) return v;
  const m = typeof v === "string"
    ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim())
    : null;
  if (!m || !(Number(m[1]) > 0)) {
    throw new TypeError(
      `${where} must be a duration like "30s" or milliseconds > 0, got ${
        show(v)
      }`,
    );
  }
  return Number(m[1]) * UNITS[m[2]];
}

function positiveInt(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw new TypeError(`${where} must be an integer > 0, got ${show(v)}`);
  }
  return v;
}

function jsonDefault(type: string, v: unknown): unknown {
  if (type === "set" && Array.isArray(v)) return new Set(v);
  if (type === "map" && v !== null && typeof v === "object") {
    return new Map(Object.entries(v));
  }
  if (type === "date" && (typeof v === "string" || typeof v === "number")) {
    return new Date(v);
  }
  return v;
}

function parseSchema(v: unknown, where: string): Schema {
  const o = objectAt(v, where);
  onlyKeys(o, ["ns", "version", "fields"], where);
  const fields: Record<string, FieldDef> = {};
  const raw = objectAt(o.fields, `${where}.fields`);
  for (const [name, d] of Object.entries(raw)) {
    const at = `${where}.fields.${name}`;
    const def = objectAt(d, at);
    onlyKeys(def, ["type", "required", "default"], at);
    if (!isFieldType(def.type)) {
      throw new TypeError(`${at}.type: unknown field type ${show(def.type)}`);
    }
    if (def.required !== undefined && typeof def.required !== "boolean") {
      throw new TypeError(`${at}.required must be true or false`);
    }
    fields[name] = {
      type: def.type,
      ...(def.required === true ? { required: true } : {}),
      ...(def.default !== undefined
        ? { default: jsonDefault(def.type, def.default) as never }
        : {}),
    };
  }
  const schema = { ns: o.ns, version: o.version, fields } as Schema;
  try {
    validateSchemaDefinition(schema);
  } catch (e) {
    throw new TypeError(`${where}: ${(e as Error).message}`);
  }
  return schema;
}

/** Config keys of `limits` → the limit they set; durations end in Timeout/Interval. */
const LIMIT_KEYS: Record<string, keyof ServerLimits> = {
  preAuthBodyBytes: "preAuthBodyBytes",
  syncBodyBytes: "syncBodyBytes",
  inFlightBytes: "inFlightBytes",
  headersTimeout: "headersTimeoutMs",
  bodyTimeout: "bodyTimeoutMs",
  keepAliveTimeout: "keepAliveTimeoutMs",
  connectionsPerAddress: "connectionsPerAddress",
  maxConnections: "maxConnections",
  maxHeaderBytes: "maxHeaderBytes",
  wsHelloTimeout: "wsHelloTimeoutMs",
  wsPingInterval: "wsPingIntervalMs",
  wsIdleTimeout: "wsIdleTimeoutMs",
  wsPreHelloFrameBytes: "wsPreHelloFrameBytes",
};

/**
 * Validates a parsed config (see the README's Security section for the format) and
 * returns the policy; throws a TypeError or RangeError naming `source`, the entry and
 * the value.
 */
export function parsePolicy(json: unknown, source: string): ServerPolicy {
  try {
    return parseOrThrow(json);
  } catch (e) {
    const E = e instanceof RangeError ? RangeError : TypeError;
    throw new E(`${source}: ${(e as Error).message}`);
  }
}

function parseOrThrow(json: unknown): ServerPolicy {
  const o = objectAt(json, "the config");
  onlyKeys(
    o,
    [
      "$comment",
      "schemas",
      "rules",
      "sessions",
      "quotas",
      "limits",
      "metrics",
      "users",
    ],
    "the config",
  );
  const schemas = o.schemas === undefined ? [] : o.schemas;
  if (!Array.isArray(schemas)) throw new TypeError("schemas must be an array");
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  const sessions = objectAt(o.sessions ?? {}, "sessions");
  onlyKeys(sessions, [
    "anonymous",
    "ttl",
    "admins",
    "perAddressPerMinute",
    "perUserPerMinute",
    "collectAfter",
  ], "sessions");
  if (
    sessions.anonymous !== undefined && typeof sessions.anonymous !== "boolean"
  ) {
    throw new TypeError("sessions.anonymous must be true or false");
  }
  const admins = sessions.admins ?? [];
  if (
    !Array.isArray(admins) ||
    admins.some((a) => typeof a !== "string" || !/^[a-z0-9_-]{1,64}$/.test(a))
  ) {
    throw new TypeError(
      `sessions.admins must be an array of user names, got ${show(admins)}`,
    );
  }
  if (sessions.perAddressPerMinute !== undefined) {
    limits.sessionsPerAddressPerMinute = positiveInt(
      sessions.perAddressPerMinute,
      "sessions.perAddressPerMinute",
    );
  }
  if (sessions.perUserPerMinute !== undefined) {
    limits.sessionsPerUserPerMinute = positiveInt(
      sessions.perUserPerMinute,
      "sessions.perUserPerMinute",
    );
  }
  if (sessions.collectAfter !== undefined) {
    limits.sessionCollectAfterMs = parseDurationMs(
      sessions.collectAfter,
      "sessions.collectAfter",
    );
  }
  const quotas = objectAt(o.quotas ?? {}, "quotas");
  onlyKeys(quotas, ["commitsPerMinute", "bytesPerMinute"], "quotas");
  if (quotas.commitsPerMinute !== undefined) {
    limits.commitsPerSessionPerMinute = positiveInt(
      quotas.commitsPerMinute,
      "quotas.commitsPerMinute",
    );
  }
  if (quotas.bytesPerMinute !== undefined) {
    limits.bytesPerSessionPerMinute = positiveInt(
      quotas.bytesPerMinute,
      "quotas.bytesPerMinute",
    );
  }
  const l = objectAt(o.limits ?? {}, "limits");
  onlyKeys(l, Object.keys(LIMIT_KEYS), "limits");
  for (const [k, v] of Object.entries(l)) {
    const target = LIMIT_KEYS[k];
    limits[target] = /Timeout$|Interval$/.test(k)
      ? parseDurationMs(v, `limits.${k}`)
      : positiveInt(v, `limits.${k}`);
  }
  const metrics = objectAt(o.metrics ?? {}, "metrics");
  onlyKeys(metrics, ["token"], "metrics");
  if (
    metrics.token !== undefined &&
    (typeof metrics.token !== "string" || metrics.token.length < 16)
  ) {
    throw new TypeError(
      "metrics.token must be a string of 16 characters or more",
    );
  }
  const users = parseUsers(o.users ?? {}, limits);
  return {
    users,
    schemas: schemas.map((s, i) => parseSchema(s, `schemas[${i}]`)),
    rules: parseDeclaredRules(o.rules ?? [], "rules"),
    anonymousSessions: sessions.anonymous !== false,
    admins: admins as string[],
    sessionTtlMs: sessions.ttl === undefined
      ? DEFAULT_SESSION_TTL_MS
      : parseDurationMs(sessions.ttl, "sessions.ttl"),
    limits: limits as unknown as ServerLimits,
    ...(typeof metrics.token === "string"
      ? { metricsToken: metrics.token }
      : {}),
  };
}

/** Parses the `users` entry (sign-up, passkeys, invites, sign-in limits). */
function parseUsers(v: unknown, limits: Record<string, number>): UserPolicy {
  const u = objectAt(v, "users");
  onlyKeys(u, [
    "signUp",
    "publicUrl",
    "rpName",
    "inviteTtl",
    "signInPerAddressPerMinute",
    "signInPerNamePerMinute",
  ], "users");
  const signUp = u.signUp ?? "invite";
  if (signUp !== "open" && signUp !== "invite" && signUp !== "closed") {
    throw new TypeError(
      `users.signUp must be "open", "invite" or "closed", got ${show(signUp)}`,
    );
  }
  if (u.publicUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(String(u.publicUrl));
    } catch {
      url = undefined;
    }
    if (
      typeof u.publicUrl !== "string" || !url ||
      !/^https?:$/.test(url.protocol)
    ) {
      throw new TypeError(
        `users.publicUrl must be an http(s) URL like "https://todo.example.com", got ${
          show(u.publicUrl)
        }`,
      );
    }
  }
  if (
    u.rpName !== undefined &&
    (typeof u.rpName !== "string" || u.rpName.length === 0 ||
      u.rpName.length > 64)
  ) {
    throw new TypeError("users.rpName must be a string of 1-64 characters");
  }
  if (u.signInPerAddressPerMinute !== undefined) {
    limits.signInPerAddressPerMinute = positiveInt(
      u.signInPerAddressPerMinute,
      "users.signInPerAddressPerMinute",
    );
  }
  if (u.signInPerNamePerMinute !== undefined) {
    limits.signInPerNamePerMinute = positiveInt(
      u.signInPerNamePerMinute,
      "users.signInPerNamePerMinute",
    );
  }
  return {
    signUp,
    ...(typeof u.publicUrl === "string" ? { publicUrl: u.publicUrl } : {}),
    ...(typeof u.rpName === "string" ? { rpName: u.rpName } : {}),
    inviteTtlMs: u.inviteTtl === undefined
      ? DEFAULT_INVITE_TTL_MS
      : parseDurationMs(u.inviteTtl, "users.inviteTtl"),
  };
}

/** Reads and parses a config file; errors name the file. */
export async function loadPolicy(path: string): Promise<ServerPolicy> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (info.size > MAX_CONFIG_BYTES) {
      throw new RangeError(
        `${path}: config file of ${info.size} bytes exceeds ${MAX_CONFIG_BYTES}`,
      );
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new TypeError(
      `Cannot read config file ${path}: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parsePolicy(json, path);
}
