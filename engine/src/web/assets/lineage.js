// The lineage page: from a product's path to the task that made it (command, params, inputs
// with their hashes) and, recursively, what made each product among those inputs.

import { get, withQuery } from "./api.js";
import { h, bytes, taskLabel, errorBox, when } from "./ui.js";

export function lineagePage(ctx, main) {
  const path = ctx.query.get("path") ?? "";
  const input = h("input", { id: "lineage-path", name: "path", type: "text", value: path, placeholder: "/data/out/pipeline/step/group/file.txt", autocomplete: "off", spellcheck: "false", "aria-describedby": "lineage-help" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Find a product" },
    h("div", { class: "field grow" }, h("label", { for: "lineage-path" }, "Product path"), input),
    h("button", { type: "submit", class: "primary" }, "Show lineage"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(withQuery("#/lineage", { path: input.value.trim() }));
  });
  const result = h("div", { class: "lineage", "aria-live": "polite" });
  main.append(
    h("h1", {}, "Lineage"),
    h("p", { id: "lineage-help", class: "hint" }, "The absolute path of a file a task made (products are under the daemon's out directory). The run page lists each task's products."),
    form,
    result,
  );
  if (!path) return;
  result.append(h("p", { class: "muted" }, "Loading…"));
  get(withQuery("/lineage", { path }), ctx.signal)
    .then((node) => result.replaceChildren(h("ul", {}, nodeView(node, 0))))
    .catch((error) => {
      if (!ctx.signal.aborted) result.replaceChildren(errorBox(error));
    });
}

function nodeView(node, depth) {
  const { product, task } = node;
  const params = Object.entries(task.params);
  return h(
    "li",
    { "data-product": product.path },
    h(
      "details",
      { open: depth < 3 },
      h("summary", {}, h("code", { class: "path" }, product.path), h("span", { class: "muted" }, ` · ${bytes(product.size)} · blake3 ${product.hash.slice(0, 12)}…`)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Made by"), h("dd", {}, `task ${task.id} (${taskLabel(task)}) of `, h("a", { href: `#/runs/${task.run}` }, `run ${task.run}`), ", ", when(task.finished_ms)),
        h("dt", {}, "Command"), h("dd", {}, h("pre", {}, task.command)),
        params.length ? [h("dt", {}, "Params"), h("dd", {}, h("code", {}, params.map(([k, v]) => `${k}=${v.value}`).join(" ")))] : null,
        h("dt", {}, "Inputs"),
        h(
          "dd",
          {},
          task.inputs.length
            ? h("ul", { class: "inputs" }, task.inputs.map((i) => h("li", {}, h("code", { class: "path" }, i.path), h("span", { class: "muted" }, ` · from ${i.from} · blake3 ${i.hash.slice(0, 12)}…`), i.task ? [" · ", h("a", { href: withQuery("#/lineage", { path: i.path }) }, "its lineage")] : null)))
            : h("span", { class: "muted" }, "none"),
        ),
      ),
      node.inputs.length ? h("ul", {}, node.inputs.map((child) => nodeView(child, depth + 1))) : null,
    ),
  );
}
