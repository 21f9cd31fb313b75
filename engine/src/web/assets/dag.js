// Draws a pipeline's DAG as SVG: nodes in layers by their longest path from a source (left to
// right, or top to bottom on a narrow screen), ordered within a layer by where their upstream
// nodes are, each step coloured by its state and labelled with an icon and words too.

import { s, h, STATUS } from "./ui.js";

const NODE_W = 176;
const NODE_H = 54;
const LAYER_GAP = 64;
const ROW_GAP = 18;
const MARGIN = 8;

/** Layers of the nodes: `layer[i]` for node `i`, by the longest path to it. */
function layers(nodes, edges) {
  const index = new Map(nodes.map((node, i) => [node.name, i]));
  const incoming = nodes.map(() => []);
  const outgoing = nodes.map(() => []);
  for (const edge of edges) {
    const from = index.get(edge.from);
    const to = index.get(edge.to);
    if (from === undefined || to === undefined) continue;
    incoming[to].push(from);
    outgoing[from].push(to);
  }
  const layer = nodes.map(() => 0);
  const remaining = incoming.map((list) => list.length);
  const ready = nodes.map((_, i) => i).filter((i) => remaining[i] === 0);
  let seen = 0;
  while (ready.length) {
    const i = ready.shift();
    seen += 1;
    for (const j of outgoing[i]) {
      layer[j] = Math.max(layer[j], layer[i] + 1);
      remaining[j] -= 1;
      if (remaining[j] === 0) ready.push(j);
    }
  }
  if (seen < nodes.length) {
    // Not a DAG (never from the daemon): one layer per node, in order.
    return { layer: nodes.map((_, i) => i), incoming };
  }
  return { layer, incoming };
}

/** What a node's second line says. */
function stateLine(node, withState) {
  if (node.kind === "source") return "source";
  if (!withState) return node.each ? `each ${node.each}` : "once over all";
  if (!node.state) return "not in this run";
  const counts = node.tasks ?? {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = (counts.succeeded ?? 0) + (counts.cached ?? 0);
  return `${STATUS[node.state] ?? "•"} ${node.state} · ${done}/${total} done`;
}

function shorten(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The graph as an element. `graph` has `nodes` (name, kind, each, and for a run: state, tasks)
 * and `edges` (from, to, kind). `options.withState` colours steps by state; `options.onSelect`
 * is called with a step's name when it is clicked or chosen with Enter or Space.
 */
export function drawDag(graph, options = {}) {
  const { withState = false, onSelect, selected, vertical = false } = options;
  const nodes = graph.nodes;
  const { layer, incoming } = layers(nodes, graph.edges);
  const byLayer = [];
  nodes.forEach((_, i) => (byLayer[layer[i]] ??= []).push(i));
  // Order each layer by the mean position of its upstream nodes (a barycentre sweep).
  const position = new Map();
  byLayer.forEach((list, l) => {
    if (l > 0) {
      const key = (i) => {
        const ups = incoming[i].filter((j) => position.has(j));
        return ups.length ? ups.reduce((sum, j) => sum + position.get(j), 0) / ups.length : Infinity;
      };
      list.sort((a, b) => key(a) - key(b) || a - b);
    }
    list.forEach((i, p) => position.set(i, p));
  });
  const widest = Math.max(1, ...byLayer.map((list) => list.length));
  const place = new Map();
  byLayer.forEach((list, l) => {
    const offset = ((widest - list.length) * (vertical ? NODE_W + ROW_GAP : NODE_H + ROW_GAP)) / 2;
    list.forEach((i, p) => {
      const x = vertical ? MARGIN + offset + p * (NODE_W + ROW_GAP) : MARGIN + l * (NODE_W + LAYER_GAP);
      const y = vertical ? MARGIN + l * (NODE_H + LAYER_GAP) : MARGIN + offset + p * (NODE_H + ROW_GAP);
      place.set(nodes[i].name, { x, y });
    });
  });
  const width = vertical
    ? 2 * MARGIN + widest * NODE_W + (widest - 1) * ROW_GAP
    : 2 * MARGIN + byLayer.length * NODE_W + (byLayer.length - 1) * LAYER_GAP;
  const height = vertical
    ? 2 * MARGIN + byLayer.length * NODE_H + (byLayer.length - 1) * LAYER_GAP
    : 2 * MARGIN + widest * NODE_H + (widest - 1) * ROW_GAP;

  const edges = graph.edges
    .filter((edge) => place.has(edge.from) && place.has(edge.to))
    .map((edge) => {
      const a = place.get(edge.from);
      const b = place.get(edge.to);
      let d;
      if (vertical) {
        const [x1, y1, x2, y2] = [a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y];
        const mid = (y1 + y2) / 2;
        d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
      } else {
        const [x1, y1, x2, y2] = [a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2];
        const mid = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      }
      return s("path", { class: `edge ${edge.kind}`, d, "marker-end": "url(#dag-arrow)" }, s("title", {}, `${edge.from} → ${edge.to} (${edge.kind})`));
    });

  const drawn = nodes.map((node) => {
    const { x, y } = place.get(node.name);
    const second = stateLine(node, withState);
    const step = node.kind === "step";
    const classes = ["node", node.kind];
    if (withState && node.state) classes.push(`state-${node.state}`);
    if (selected === node.name) classes.push("selected");
    const group = s(
      "g",
      {
        class: classes.join(" "),
        transform: `translate(${x},${y})`,
        tabindex: step && onSelect ? 0 : undefined,
        role: step && onSelect ? "button" : "img",
        "aria-label": `${node.kind} ${node.name}: ${second}`,
        "data-node": node.name,
        "data-state": node.state ?? undefined,
      },
      s("title", {}, `${node.kind} ${node.name}: ${second}`),
      s("rect", { width: NODE_W, height: NODE_H, rx: 8, ry: 8 }),
      s("text", { x: 10, y: 22, "font-weight": step ? 700 : 400 }, shorten(node.name, 22)),
      s("text", { x: 10, y: 42, class: "state-line" }, shorten(second, 28)),
    );
    if (step && onSelect) {
      group.addEventListener("click", () => onSelect(node.name));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onSelect(node.name);
        }
      });
    }
    return group;
  });

  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width, height, role: "group", "aria-label": `The DAG of ${graph.pipeline}` },
    s("defs", {}, s("marker", { id: "dag-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
    edges,
    drawn,
  );
  return h("div", { class: "dag" }, svg);
}
