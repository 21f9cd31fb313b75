// The runs page: the history, newest first, refreshed every two seconds, filtered by pipeline,
// status and label (kept in the address, so a filtered view can be bookmarked), a page at a
// time.

import { get, withQuery } from "./api.js";
import { h, badge, when, duration, table, row, updateRows } from "./ui.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"];
const PAGE = 20;

export function runsPage(ctx, main) {
  const query = {
    pipeline: ctx.query.get("pipeline") ?? "",
    status: ctx.query.get("status") ?? "",
    label: ctx.query.get("label") ?? "",
    offset: Number(ctx.query.get("offset") ?? 0) || 0,
  };
  const go = (changes) => ctx.navigate(withQuery("#/runs", { ...query, ...changes }));

  const pipeline = h("select", { id: "filter-pipeline", name: "pipeline" }, h("option", { value: "" }, "all"));
  const status = h("select", { id: "filter-status", name: "status" }, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s, selected: s === query.status }, s)));
  const label = h("input", { id: "filter-label", name: "label", type: "text", value: query.label, list: "labels", placeholder: "manual, cron, api, retry of 3…", autocomplete: "off" });
  const labels = h("datalist", { id: "labels" }, ["manual", "api", "cron", "continuous"].map((l) => h("option", { value: l })));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs" },
    h("div", { class: "field" }, h("label", { for: "filter-pipeline" }, "Pipeline"), pipeline),
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: "filter-label" }, "Label (trigger)"), label, labels),
    h("button", { type: "submit", class: "primary" }, "Filter"),
    h("button", { type: "button", class: "secondary", onclick: () => ctx.navigate("#/runs") }, "Clear"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ pipeline: pipeline.value, status: status.value, label: label.value.trim(), offset: 0 });
  });
  pipeline.addEventListener("change", () => go({ pipeline: pipeline.value, offset: 0 }));
  status.addEventListener("change", () => go({ status: status.value, offset: 0 }));

  const problems = h("div");
  const runs = table("Runs, newest first", ["Run", "Pipeline", "Status", "Trigger", "Created", "Took", "Params"], "runs");
  const empty = h("p", { class: "empty", hidden: true }, "No run matches.");
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const previous = h("button", { type: "button", class: "secondary", onclick: () => go({ offset: Math.max(0, query.offset - PAGE) }) }, "← Newer");
  const next = h("button", { type: "button", class: "secondary", onclick: () => go({ offset: query.offset + PAGE }) }, "Older →");
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), count),
    form,
    problems,
    runs.element,
    empty,
    h("nav", { class: "pager", "aria-label": "Pages of runs" }, previous, next),
  );

  get("/pipelines", ctx.signal)
    .then((data) => {
      const names = new Set(data.pipelines.map((p) => p.name));
      if (query.pipeline) names.add(query.pipeline);
      for (const name of [...names].sort()) pipeline.append(h("option", { value: name, selected: name === query.pipeline }, name));
    })
    .catch(() => {
      // The list of names only helps the filter; the table says what is wrong.
    });

  ctx.every(
    2000,
    async () => {
      const listing = await get(withQuery("/runs", { pipeline: query.pipeline, status: query.status, label: query.label, limit: PAGE, offset: query.offset }), ctx.signal);
      const last = query.offset + listing.runs.length;
      count.textContent = listing.total ? `${listing.runs.length ? query.offset + 1 : 0}–${last} of ${listing.total}` : "";
      previous.disabled = query.offset === 0;
      next.disabled = last >= listing.total;
      empty.hidden = listing.runs.length > 0;
      updateRows(runs.body, listing.runs, (r) => r.id, (r) => runRow(runs.columns, r), (r) => JSON.stringify([r, r.finished_ms ? null : Math.floor(Date.now() / 5000)]));
    },
    problems,
  );
}

function runRow(columns, run) {
  const params = Object.entries(run.params).map(([name, value]) => `${name}=${value.value}`).join(" ");
  const took = (run.finished_ms ?? Date.now()) - run.created_ms;
  return row(
    columns,
    [
      h("a", { href: `#/runs/${run.id}`, "data-focus": "open" }, `run ${run.id}`),
      run.pipeline,
      badge(run.status),
      run.trigger,
      when(run.created_ms),
      run.finished_ms ? duration(took) : h("span", { class: "muted" }, `${duration(took)} so far`),
      params ? h("code", {}, params) : h("span", { class: "muted" }, "—"),
    ],
    { "data-run": run.id, "data-status": run.status },
  );
}
