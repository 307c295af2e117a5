/**
 * Turns a {@link ServerPolicy} into what `createServer` takes, and gives the default
 * policy of `capra serve`.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import { orderKeyOfNumber } from "../../lib/order/order_key.ts";
import { compileRules } from "../../lib/sync/declared_rules.ts";
import type { RepoRule } from "../../lib/sync/rules.ts";
import type { ServerLimits } from "../limits/limits.ts";
import { parsePolicy } from "./parse_policy.ts";
import {
  DEFAULT_POLICY_CONFIG,
  type ServerPolicy,
  type UserPolicy,
} from "./policy.ts";

/**
 * The policy of `capra serve` without `--config`: {@link DEFAULT_POLICY_CONFIG}, with
 * the demo app's upgrade of todo items from version 1 (a number for the position) to
 * version 2 (an order key, as the app computes it), so old items stay readable.
 */
export function defaultPolicy(): ServerPolicy {
  const policy = parsePolicy(DEFAULT_POLICY_CONFIG, "the default policy");
  return {
    ...policy,
    schemas: policy.schemas.map((s) =>
      s.ns === "todo" && s.version === 2
        ? {
          ...s,
          upgrade: (data) => ({
            ...data,
            order: orderKeyOfNumber(
              typeof data.order === "number" ? data.order : 0,
            ),
          }),
        }
        : s
    ),
  };
}

/** The parts of `createServer`'s options a policy sets. */
export interface PolicyOptions {
  readonly rules: RepoRule[];
  readonly anonymousSessions: boolean;
  readonly admins: readonly string[];
  readonly sessionTtlMs: number;
  readonly limits: ServerLimits;
  readonly metricsToken?: string;
  /** The user system's options (`createServer({ security: { users } })`). */
  readonly users: UserPolicy;
}

/**
 * Registers the policy's schemas on `db` (those it already knows are left alone) and
 * returns the server options the policy sets.
 */
export function applyPolicy(db: Database, policy: ServerPolicy): PolicyOptions {
  for (const s of policy.schemas) {
    if (!db.schemas.get(`${s.ns}/${s.version}`)) db.registerSchema(s);
  }
  return {
    rules: compileRules(policy.rules),
    anonymousSessions: policy.anonymousSessions,
    admins: policy.admins,
    sessionTtlMs: policy.sessionTtlMs,
    limits: policy.limits,
    users: policy.users,
    ...(policy.metricsToken !== undefined
      ? { metricsToken: policy.metricsToken }
      : {}),
  };
}
