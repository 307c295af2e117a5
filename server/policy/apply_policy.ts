/**
 * Turns a {@link ServerPolicy} into what `createServer` takes, and gives the default
 * policy of `capra serve`.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import { compileRules } from "../../lib/sync/declared_rules.ts";
import type { RepoRule } from "../../lib/sync/rules.ts";
import type { ServerLimits } from "../limits/limits.ts";
import { parsePolicy } from "./parse_policy.ts";
import { DEFAULT_POLICY_CONFIG, type ServerPolicy } from "./policy.ts";

/** The policy of `capra serve` without `--config`. */
export function defaultPolicy(): ServerPolicy {
  return parsePolicy(DEFAULT_POLICY_CONFIG, "the default policy");
}

/** The parts of `createServer`'s options a policy sets. */
export interface PolicyOptions {
  readonly rules: RepoRule[];
  readonly anonymousSessions: boolean;
  readonly admins: readonly string[];
  readonly sessionTtlMs: number;
  readonly limits: ServerLimits;
  readonly metricsToken?: string;
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
    ...(policy.metricsToken !== undefined
      ? { metricsToken: policy.metricsToken }
      : {}),
  };
}
