/**
 * Draws an item's commit graph as SVG: one row per commit (oldest at the top), one lane
 * per concurrent branch, edges to parents. Full snapshots are filled circles, deltas are
 * rings, merges (several parents) are squares; heads get a thick outline. Each row is
 * labelled with the short id, the kind and the signing session.
 *
 * @module
 */

import type { CommitInfo } from "../../lib/core/item_history.ts";

const SVG_NS = "http://www.w3.org/2000/svg";
/** Vertical distance between commits. */
const ROW_HEIGHT = 28;
/** Horizontal distance between lanes. */
const LANE_WIDTH = 22;
/** Radius of a commit mark. */
const NODE_RADIUS = 7;
/** Left margin before lane 0. */
const MARGIN = 14;
/** Characters of ids and sessions shown. */
const SHORT_ID = 8;

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Assigns each commit a lane: a commit continues its first parent's lane when free. */
function lanes(commits: readonly CommitInfo[]): Map<string, number> {
  const lane = new Map<string, number>();
  const taken = new Set<string>(); // parent ids whose lane was continued
  let next = 0;
  for (const c of commits) {
    const p = c.parents[0];
    if (p !== undefined && lane.has(p) && !taken.has(p)) {
      lane.set(c.id, lane.get(p)!);
      taken.add(p);
    } else lane.set(c.id, next++);
  }
  return lane;
}

/** Builds the SVG for an item's history (as returned by `item.history()`). */
export function drawCommitGraph(
  commits: readonly CommitInfo[],
  sessionLabel: (session: string) => string,
): SVGSVGElement {
  const lane = lanes(commits);
  const row = new Map(commits.map((c, i) => [c.id as string, i]));
  const laneCount = Math.max(1, ...lane.values()) + 1;
  const textX = MARGIN + laneCount * LANE_WIDTH;
  const width = textX + 320;
  const height = Math.max(1, commits.length) * ROW_HEIGHT + MARGIN;
  const svg = el("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Commit graph: ${commits.length} commits, ${
      commits.filter((c) => c.kind === "full").length
    } full snapshots, ${
      commits.filter((c) => c.parents.length > 1).length
    } merges, ${commits.filter((c) => c.head).length} heads`,
  });
  const at = (id: string) => ({
    x: MARGIN + lane.get(id)! * LANE_WIDTH,
    y: MARGIN + row.get(id)! * ROW_HEIGHT,
  });
  for (const c of commits) {
    const to = at(c.id);
    for (const p of c.parents) {
      if (!row.has(p)) continue;
      const from = at(p);
      svg.append(el("path", {
        d: `M${from.x},${from.y} C${from.x},${to.y - ROW_HEIGHT / 2} ${to.x},${
          from.y + ROW_HEIGHT / 2
        } ${to.x},${to.y}`,
        class: "edge",
      }));
    }
  }
  for (const c of commits) {
    const { x, y } = at(c.id);
    const merge = c.parents.length > 1;
    const cls = `node ${c.kind}${c.head ? " head" : ""}${
      merge ? " merge" : ""
    }`;
    const mark = merge
      ? el("rect", {
        x: x - NODE_RADIUS,
        y: y - NODE_RADIUS,
        width: NODE_RADIUS * 2,
        height: NODE_RADIUS * 2,
        class: cls,
      })
      : el("circle", { cx: x, cy: y, r: NODE_RADIUS, class: cls });
    const title = el("title", {});
    title.textContent = `${c.id}\n${c.kind}${
      c.base ? ` of ${c.base.slice(0, SHORT_ID)}` : ""
    }, parents: ${c.parents.length}, signed by ${c.session}${
      c.deleted ? ", delete" : ""
    }`;
    mark.append(title);
    svg.append(mark);
    const label = el("text", { x: textX, y: y + 4, class: "label" });
    label.textContent = `${c.id.slice(0, SHORT_ID)} ${c.kind}${
      merge ? " merge" : ""
    }${c.deleted ? " delete" : ""} · ${sessionLabel(c.session)}`;
    svg.append(label);
  }
  return svg;
}
