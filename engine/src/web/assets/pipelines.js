// The pipelines page: each loaded pipeline with its trigger, next fire, gap per step, last run
// and load error; files that do not load; and a Trigger button whose form is made from the
// params' types and constraints and shows the daemon's verdict next to each field.

import { get, post, canWrite, ApiError } from "./api.js";
import { h, put, badge, when, errorBox, openDialog, closeDialog, notify, updateRows } from "./ui.js";

export function pipelinesPage(ctx, main) {
  const problems = h("div");
  const broken = h("div");
  const list = h("div", { class: "cards" });
  /** The gap of each pipeline scanned by this page: {gap} | {error} | {scanning: true}. */
  const scans = new Map();
  let latest = null;
  const rescan = h("button", { type: "button", class: "secondary", onclick: () => scanAll() }, "Rescan gaps");
  main.append(h("div", { class: "page-head" }, h("h1", {}, "Pipelines"), rescan), problems, broken, list);

  function draw() {
    if (!latest) return;
    put(broken, 
      latest.load_errors.length
        ? h(
            "section",
            { class: "warning", "aria-label": "Files that do not load" },
            h("strong", {}, `${latest.load_errors.length} file(s) do not load:`),
            latest.load_errors.map((e) => h("div", {}, h("code", { class: "path" }, e.file), h("pre", {}, e.error))),
          )
        : null,
    );
    if (!latest.pipelines.length) {
      list.replaceChildren(h("p", { class: "empty" }, "No pipeline is loaded: put .pipe files in the daemon's directory."));
      return;
    }
    if (list.querySelector(".empty")) list.replaceChildren();
    updateRows(
      list,
      latest.pipelines,
      (p) => p.name,
      (p) => card(p, scans.get(p.name)),
      (p) => JSON.stringify([p, scans.get(p.name) ?? null, canWrite()]),
    );
  }

  async function scan(pipeline) {
    const name = pipeline.name;
    if (pipeline.params.some((p) => p.required)) {
      // Planning needs a value for every param; the daemon would refuse (422).
      scans.set(name, { error: "needs params to plan (a param has no default)" });
      draw();
      return;
    }
    scans.set(name, { scanning: true });
    draw();
    try {
      const answer = await get(`/pipelines/${encodeURIComponent(name)}/gap`, ctx.signal);
      scans.set(name, { gap: answer.gap });
    } catch (error) {
      if (ctx.signal.aborted) return;
      const needs = error instanceof ApiError && error.status === 422;
      scans.set(name, { error: needs ? "needs params to plan (a param has no default)" : error.message });
    }
    draw();
  }

  async function scanAll() {
    rescan.disabled = true;
    try {
      for (const p of latest?.pipelines ?? []) {
        if (ctx.signal.aborted) return;
        await scan(p);
      }
    } finally {
      rescan.disabled = false;
    }
  }

  let first = true;
  ctx.every(
    5000,
    async () => {
      latest = await get("/pipelines", ctx.signal);
      draw();
      if (first) {
        first = false;
        scanAll();
      }
    },
    problems,
  );
}

function card(p, scanned) {
  const facts = [
    ["File", h("code", { class: "path" }, p.file)],
    ["Trigger", [p.trigger, p.trigger_detail ? h("span", { class: "muted" }, ` · ${p.trigger_detail}`) : null]],
  ];
  if (p.trigger === "cron") facts.push(["Next fire", when(p.next_fire_ms)]);
  if (p.overlap) facts.push(["Overlap", `${p.overlap} (a trigger while a run is going)`]);
  facts.push([
    "Last run",
    p.last_run ? [h("a", { href: `#/runs/${p.last_run}` }, `run ${p.last_run}`), " ", badge(p.last_run_status)] : h("span", { class: "muted" }, "none yet"),
  ]);
  facts.push(["Gap", gapView(p, scanned)]);
  if (p.params.length) {
    facts.push(["Params", h("ul", { class: "chips" }, p.params.map((param) => h("li", { class: "chip" }, `${param.name}: ${param.kind}${param.default !== null ? ` = ${param.default}` : " (required)"}`)))]);
  }
  return h(
    "section",
    { class: "card pipeline", "data-pipeline": p.name, "aria-labelledby": `pipeline-${p.name}` },
    h("h2", { id: `pipeline-${p.name}` }, p.name),
    p.load_error
      ? h("div", { class: "warning" }, h("strong", {}, "The file no longer loads; its last good version stays in force."), h("pre", {}, p.load_error))
      : null,
    h("dl", { class: "facts" }, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
    h(
      "div",
      { class: "actions" },
      canWrite() ? h("button", { type: "button", class: "primary", "data-focus": "trigger", onclick: () => triggerDialog(p) }, "Trigger…") : null,
      h("a", { href: `#/runs?pipeline=${encodeURIComponent(p.name)}` }, "Runs"),
      h("a", { href: `#/failed?pipeline=${encodeURIComponent(p.name)}` }, "Failed tasks"),
    ),
  );
}

/** The gap per step: as this page scanned it, else as the daemon last saw it. */
function gapView(p, scanned) {
  if (scanned?.scanning) return h("span", { class: "muted" }, "scanning…");
  if (scanned?.error) return h("span", { class: "muted" }, scanned.error);
  const gap = scanned?.gap ?? p.gap;
  if (!scanned && !gap.length) return h("span", { class: "muted" }, "not scanned yet");
  const busy = gap.filter((g) => g.tasks > 0 || g.held > 0);
  if (!busy.length) return h("span", { class: "gap-none" }, "up to date: nothing to run");
  const chip = (g) => {
    const held = g.held > 0 ? `, ${g.held} held for a retry by hand` : "";
    return h("li", { class: g.held > 0 ? "chip held" : g.tasks > 0 ? "chip busy" : "chip" }, `${g.step}: ${g.tasks}${held}`);
  };
  return h("ul", { class: "chips gap" }, gap.map(chip));
}

/** The Trigger form: one field per param, made from its kind and constraint. */
function triggerDialog(p) {
  const fields = new Map();
  const summary = h("div", { role: "alert" });
  const form = h("form", { class: "trigger-form", novalidate: true });
  if (!p.params.length) form.append(h("p", {}, `${p.name} has no params: a run starts with its definition as it is.`));
  for (const param of p.params) {
    const field = paramField(param);
    fields.set(param.name, field);
    form.append(field.element);
  }
  const submit = h("button", { type: "submit", class: "primary" }, "Trigger run");
  form.append(summary, h("div", { class: "buttons" }, h("button", { type: "button", class: "secondary", onclick: () => closeDialog(undefined) }, "Cancel"), submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    summary.replaceChildren();
    for (const field of fields.values()) field.setError(null);
    const params = {};
    for (const [name, field] of fields) {
      const value = field.value();
      if (value !== "") params[name] = value;
    }
    submit.disabled = true;
    try {
      const answer = await post(`/pipelines/${encodeURIComponent(p.name)}/trigger`, { params });
      closeDialog(answer.run);
    } catch (error) {
      if (error instanceof ApiError && error.status === 422 && Array.isArray(error.details)) {
        const loose = [];
        for (const problem of error.details) {
          const field = fields.get(problem.param);
          if (field) field.setError(problem.message);
          else loose.push(problem.message);
        }
        summary.replaceChildren(errorBox(new Error(loose.length ? loose.join("\n") : "Some params do not fit: see the fields above.")));
        [...fields.values()].find((f) => f.invalid())?.focus();
      } else {
        summary.replaceChildren(errorBox(error));
      }
    } finally {
      submit.disabled = false;
    }
  });
  openDialog(`Trigger ${p.name}`, form).then((run) => {
    if (typeof run === "number") {
      notify(`Run ${run} of ${p.name} started.`);
      location.hash = `#/runs/${run}`;
    }
  });
}

function paramField(param) {
  const id = `param-${param.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const common = { id, name: param.name, "aria-describedby": `${hintId} ${errorId}`, "aria-required": param.required ? "true" : undefined };
  let input;
  if (param.kind === "enum" || param.kind === "bool") {
    const choices = param.kind === "bool" ? ["true", "false"] : param.choices;
    input = h(
      "select",
      common,
      h("option", { value: "" }, param.default !== null ? `default (${param.default})` : "choose…"),
      choices.map((choice) => h("option", { value: choice }, choice)),
    );
  } else {
    const numeric = param.kind === "int" || param.kind === "float";
    input = h("input", {
      ...common,
      type: "text",
      inputmode: numeric ? (param.kind === "int" ? "numeric" : "decimal") : undefined,
      placeholder: param.default ?? "",
      autocomplete: "off",
      spellcheck: "false",
    });
  }
  const error = h("p", { id: errorId, class: "field-error", "aria-live": "polite" });
  const hint = [`${param.kind}${param.required ? ", required" : ""}: ${param.expected}`];
  if (param.default !== null) hint.push(`empty for the default, ${param.default}`);
  const element = h(
    "div",
    { class: "field" },
    h("label", { for: id }, param.name, param.required ? h("span", { "aria-hidden": "true" }, " *") : null),
    input,
    h("p", { id: hintId, class: "hint" }, hint.join("; ")),
    error,
  );
  return {
    element,
    value: () => (param.kind === "string" ? input.value : input.value.trim()),
    focus: () => input.focus(),
    invalid: () => input.getAttribute("aria-invalid") === "true",
    setError(message) {
      error.textContent = message ?? "";
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}
