/** A concept in an attribution graph. */
export interface AttributionGraphNode {
  /** unique id (`n0` is the root) */
  id: string;
  layer: string;
  concept: number;
  /** the concept's relevance under its ancestors' condition chain */
  relevance: number;
  /** 0 for the root, +1 per layer down */
  depth: number;
}

/** A parent concept sending relevance to a sub-concept in the layer below. */
export interface AttributionGraphEdge {
  from: string;
  to: string;
  /** relevance of the child under the parent's chain (the child node's relevance) */
  relevance: number;
  /** child relevance / parent relevance */
  share: number;
}

/** What a concept is built from, layer by layer (a tree rooted at `root`). Plain JSON. */
export interface AttributionGraph {
  /** the class explained */
  target: number;
  root: string;
  nodes: AttributionGraphNode[];
  edges: AttributionGraphEdge[];
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function checkGraph(graph: AttributionGraph): Map<string, AttributionGraphNode> {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  for (const e of graph.edges) {
    if (!byId.has(e.from) || !byId.has(e.to)) {
      throw new CrpError(
        'invalid-argument',
        `edge ${e.from} -> ${e.to} names a node that is not in the graph`,
      );
    }
  }
  return byId;
}

/** Mermaid flowchart text of the graph (`flowchart TD`): nodes "layer #concept / R = ...", edges labelled
 * with their share. Paste into Markdown (```mermaid) to render. */
export function toMermaid(graph: AttributionGraph): string {
  checkGraph(graph);
  const lines = ['flowchart TD'];
  for (const n of graph.nodes) {
    lines.push(`  ${n.id}["${n.layer} #${n.concept}<br/>R = ${n.relevance.toPrecision(3)}"]`);
  }
  for (const e of graph.edges) lines.push(`  ${e.from} -->|"${percent(e.share)}"| ${e.to}`);
  return `${lines.join('\n')}\n`;
}

export interface SvgOptions {
  /** node box size in pixels (default 150 x 44) */
  nodeWidth?: number;
  nodeHeight?: number;
  /** gap between levels (default 60) and between nodes of a level (default 16) */
  levelGap?: number;
  nodeGap?: number;
}

/**
 * A self-contained SVG picture of the graph: one row per depth (the root on top), nodes in the order of the
 * tree, edges as lines whose width follows |share| (red for positive, blue for negative relevance).
 */
export function toSvg(graph: AttributionGraph, options: SvgOptions = {}): string {
  const byId = checkGraph(graph);
  const { nodeWidth = 150, nodeHeight = 44, levelGap = 60, nodeGap = 16 } = options;
  const levels = new Map<number, AttributionGraphNode[]>();
  for (const n of graph.nodes) levels.set(n.depth, [...(levels.get(n.depth) ?? []), n]);
  const widest = Math.max(1, ...[...levels.values()].map((l) => l.length));
  const width = widest * (nodeWidth + nodeGap) + nodeGap;
  const depths = [...levels.keys()].sort((a, b) => a - b);
  const height = depths.length * (nodeHeight + levelGap) - levelGap + 2 * nodeGap;
  const pos = new Map<string, { x: number; y: number }>();
  depths.forEach((d, row) => {
    const level = levels.get(d)!;
    const span = level.length * (nodeWidth + nodeGap) - nodeGap;
    level.forEach((n, i) => {
      pos.set(n.id, {
        x: (width - span) / 2 + i * (nodeWidth + nodeGap),
        y: nodeGap + row * (nodeHeight + levelGap),
      });
    });
  });
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  for (const e of graph.edges) {
    const a = pos.get(e.from)!;
    const b = pos.get(e.to)!;
    const x1 = a.x + nodeWidth / 2;
    const y1 = a.y + nodeHeight;
    const x2 = b.x + nodeWidth / 2;
    const y2 = b.y;
    const stroke = e.relevance >= 0 ? '#c0392b' : '#2b59c3';
    const w = (1 + 6 * Math.min(1, Math.abs(e.share))).toFixed(2);
    parts.push(
      `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${stroke}" stroke-width="${w}" stroke-opacity="0.7"/>`,
    );
    parts.push(
      `<text x="${(x1 + x2) / 2 + 4}" y="${(y1 + y2) / 2}" fill="#333">${escapeXml(percent(e.share))}</text>`,
    );
  }
  for (const n of graph.nodes) {
    const p = pos.get(n.id)!;
    const fill = byId.get(n.id)!.relevance >= 0 ? '#fdecea' : '#e8eefc';
    parts.push(
      `<rect x="${p.x}" y="${p.y}" width="${nodeWidth}" height="${nodeHeight}" rx="6" fill="${fill}" stroke="#555"/>`,
      `<text x="${p.x + nodeWidth / 2}" y="${p.y + 18}" text-anchor="middle">${escapeXml(`${n.layer} #${n.concept}`)}</text>`,
      `<text x="${p.x + nodeWidth / 2}" y="${p.y + 34}" text-anchor="middle" fill="#555">${escapeXml(`R = ${n.relevance.toPrecision(3)}`)}</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

import { CrpError, escapeXml } from '@crp/common';
