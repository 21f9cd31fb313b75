// The run page: the run's facts, its DAG with each step coloured by its tasks, the task table
// (group, attempts, duration, peak memory, exit, why it ran or was cached), a log viewer that
// follows a running task, and the actions on the run, each confirmed with what it will do.

import { get, post, canWrite, followLog, withQuery, ApiError } from "./api.js";
import { h, put, badge, when, duration, bytes, reasonText, taskLabel, errorBox, confirmAction, notify, table, row, updateRows } from "./ui.js";
import { drawDag } from "./dag.js";

const LIVE = new Set(["queued", "running"]);
const ENDED_BADLY = new Set(["failed", "cancelled", "interrupted"]);
/** Rows the task table shows before it asks whether to show them all. */
const TASK_ROWS = 300;
/** Lines a followed log keeps; older ones are dropped from the top. */
const MAX_LOG_LINES = 5000;

export function runPage(ctx, main, match) {
  const id = Number(match[1]);
  const state = { detail: null, graph: null, step: null, task: null, all: false };

  const head = h("div", { class: "page-head" }, h("h1", {}, `Run ${id}`));
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions", "aria-label": "Actions on this run" });
  const actionProblem = h("div");
  const problems = h("div");
  const dag = h("div", { "aria-live": "off" });
  const stepFilter = h("p", { class: "muted" });
  const tasks = table("The run's tasks", ["Task", "Step", "Group", "Status", "Attempts", "Duration", "Peak memory", "Exit", "Why", "Log"], "tasks");
  const viewer = logViewer(ctx);
  main.append(
    head,
    facts,
    actions,
    actionProblem,
    problems,
    h("h2", {}, "Graph"),
    h("p", { class: "hint" }, "Each step is coloured by the state of its tasks, with an icon and a word. Choose a step to show only its tasks."),
    dag,
    h("h2", {}, "Tasks"),
    stepFilter,
    tasks.element,
    viewer.element,
  );

  function draw() {
    const { detail, graph } = state;
    const run = detail.run;
    head.replaceChildren(h("h1", {}, `Run ${id}`), badge(run.status));
    const params = Object.entries(run.params);
    facts.replaceChildren(
      ...[
        ["Pipeline", h("a", { href: withQuery("#/runs", { pipeline: run.pipeline }) }, run.pipeline)],
        ["Trigger", run.trigger],
        run.parent ? ["Made from", h("a", { href: `#/runs/${run.parent}` }, `run ${run.parent}`)] : null,
        ["Created", when(run.created_ms)],
        ["Took", run.finished_ms ? duration(run.finished_ms - run.created_ms) : `${duration(Date.now() - run.created_ms)} so far`],
        ["Params", params.length ? h("code", {}, params.map(([k, v]) => `${k}=${v.value}`).join(" ")) : h("span", { class: "muted" }, "none")],
        ["File", h("code", { class: "path" }, run.file)],
      ]
        .filter(Boolean)
        .flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
    );
    drawActions();
    const vertical = main.clientWidth < 640;
    const dagSig = JSON.stringify([graph, state.step, vertical]);
    if (dag.dataset.sig === dagSig) return drawTasks();
    dag.dataset.sig = dagSig;
    const focused = dag.contains(document.activeElement) ? document.activeElement.dataset.node : null;
    put(dag, 
      graph
        ? drawDag(graph, {
            withState: true,
            selected: state.step,
            vertical,
            onSelect: (step) => {
              state.step = state.step === step ? null : step;
              draw();
            },
          })
        : h("p", { class: "muted" }, "No graph."),
    );
    if (graph?.drawn_from === "tasks") dag.append(h("p", { class: "hint" }, "The pipeline is no longer loaded: the graph is pieced together from the run's tasks."));
    if (focused) dag.querySelector(`[data-node="${CSS.escape(focused)}"]`)?.focus();
    drawTasks();
  }

  function drawTasks() {
    const { detail } = state;
    const matching = detail.tasks.filter((t) => !state.step || t.step === state.step);
    const shown = state.all ? matching : matching.slice(0, TASK_ROWS);
    put(
      stepFilter,
      state.step
        ? [`Tasks of step ${state.step} (${matching.length} of ${detail.tasks.length}). `, h("button", { type: "button", class: "link", onclick: () => { state.step = null; draw(); } }, "Show every step")]
        : `${detail.tasks.length} task(s).`,
      shown.length < matching.length
        ? [` The first ${shown.length} are shown. `, h("button", { type: "button", class: "link", onclick: () => { state.all = true; draw(); } }, `Show all ${matching.length}`)]
        : null,
    );
    updateRows(tasks.body, shown, (t) => t.id, (t) => taskRow(tasks.columns, t, state.task === t.id), (t) => JSON.stringify([t, state.task === t.id, t.status === "running" ? Math.floor(Date.now() / 1000) : 0]));
    viewer.update(detail);
  }

  function taskRow(columns, task, selected) {
    const last = task.attempts_detail.at(-1);
    const took = last ? (last.wall_ms ?? (last.finished_ms ?? Date.now()) - last.started_ms) : null;
    const peak = task.attempts_detail.reduce((max, a) => Math.max(max, a.max_rss_bytes ?? 0), 0);
    return row(
      columns,
      [
        h("span", { class: "mono" }, task.id),
        task.step,
        task.group ?? h("span", { class: "muted" }, "(all)"),
        badge(task.status),
        task.attempts,
        last ? (last.finished_ms ? duration(took) : `${duration(took)} so far`) : "—",
        peak ? bytes(peak) : "—",
        exitText(last),
        task.status === "blocked" && task.blocked_by ? `blocked by task ${task.blocked_by}` : reasonText(task.reason),
        h(
          "button",
          { type: "button", class: "secondary", "data-focus": "logs", "aria-label": `${task.status === "running" ? "Follow log" : "Log"} of task ${task.id}, ${taskLabel(task)}`, onclick: () => { state.task = task.id; viewer.open(task, state.detail.run); draw(); } },
          task.status === "running" ? "Follow log" : "Log",
        ),
      ],
      { class: selected ? "selected" : undefined, "data-task": task.id, "data-step": task.step, "data-status": task.status },
    );
  }

  function drawActions() {
    actions.replaceChildren();
    if (!canWrite()) {
      actions.append(h("span", { class: "muted" }, "Read-only: log in to cancel, resume, retry or rerun."));
      return;
    }
    const run = state.detail.run;
    const tasks = state.detail.tasks;
    const failed = tasks.filter((t) => t.status === "failed");
    if (LIVE.has(run.status)) {
      actions.append(action("Cancel run", "danger", {
        title: `Cancel run ${id}?`,
        body: [
          `Its running tasks (${tasks.filter((t) => t.status === "running").length}) are stopped: SIGTERM to their process groups, SIGKILL 5 seconds later. Tasks that have not started will not start.`,
          "Tasks that finished keep their results; Resume goes on from there later.",
        ],
        action: "Cancel run",
        danger: true,
      }, async () => {
        await post(`/runs/${id}/cancel`);
        notify(`Cancel of run ${id} requested: it stops in a moment.`);
        refresh();
      }));
      return;
    }
    if (ENDED_BADLY.has(run.status)) {
      const left = tasks.filter((t) => !["succeeded", "cached"].includes(t.status)).length;
      actions.append(action("Resume", "primary", {
        title: `Resume run ${id}?`,
        body: [`A new run goes on where run ${id} stopped: the ${left} task(s) that did not complete run (if their inputs still call for it); the tasks that completed are reused from the cache, not run again.`],
        action: "Resume",
      }, () => again(`/runs/${id}/resume`)));
    }
    if (failed.length) {
      const names = failed.slice(0, 5).map(taskLabel).join(", ") + (failed.length > 5 ? `, … (${failed.length} in all)` : "");
      actions.append(action("Retry failed", "primary", {
        title: `Retry the failed tasks of run ${id}?`,
        body: [`A new run runs the ${failed.length} failed task(s) again (${names}), with the tasks they blocked and what they need; everything else is left alone.`],
        action: "Retry failed",
      }, () => again(`/runs/${id}/retry`)));
    }
    actions.append(action("Rerun", "secondary", {
      title: `Rerun run ${id} from scratch?`,
      body: [
        `A new run of ${run.pipeline} with the same params runs every step again, ignoring the cache: cached results are not used, so all ${tasks.length} task(s) run even where nothing changed.`,
      ],
      action: "Rerun everything",
      danger: true,
    }, () => again(`/runs/${id}/rerun`)));
    const steps = (state.graph?.nodes ?? []).filter((n) => n.kind === "step").map((n) => n.name);
    if (steps.length) {
      const choice = h("select", { id: "rerun-from", "aria-label": "Step to rerun from" }, steps.map((name) => h("option", { value: name, selected: name === state.step }, name)));
      const button = h("button", { type: "button", class: "secondary", "data-action": "rerun-from" }, "Rerun from step…");
      button.addEventListener("click", async () => {
        const from = choice.value;
        const downstream = downstreamOf(state.graph, from);
        const ok = await confirmAction({
          title: `Rerun run ${id} from step ${from}?`,
          body: [
            `A new run discards the cached results of ${downstream.length === 1 ? "this step" : `these ${downstream.length} steps`}: ${downstream.join(", ")}. They run again even where their inputs did not change.`,
            "Steps upstream of it reuse their cached results.",
          ],
          action: `Rerun from ${from}`,
          danger: true,
        });
        if (ok) await act(() => again(`/runs/${id}/rerun`, { from }));
      });
      actions.append(h("span", { class: "rerun-from" }, choice, " ", button));
    }
  }

  function action(label, kind, confirmation, task) {
    return h("button", {
      type: "button",
      class: kind,
      "data-action": label.toLowerCase().replace(/ /g, "-"),
      onclick: async () => {
        if (await confirmAction(confirmation)) await act(task);
      },
    }, label);
  }

  async function act(task) {
    actionProblem.replaceChildren();
    try {
      await task();
    } catch (error) {
      actionProblem.replaceChildren(errorBox(error));
    }
  }

  async function again(path, body) {
    const answer = await post(path, body);
    notify(`Run ${answer.run} started from run ${id}.`);
    ctx.navigate(`#/runs/${answer.run}`);
  }

  async function refresh() {
    const [detail, graph] = await Promise.all([get(`/runs/${id}`, ctx.signal), get(`/runs/${id}/graph`, ctx.signal)]);
    state.detail = detail;
    state.graph = graph;
    draw();
  }

  // The DAG turns top to bottom on a narrow window, left to right on a wide one.
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.detail && draw(), 100);
  }, { signal: ctx.signal });

  // While the run is live the page follows it; once it has finished, nothing changes.
  let settled = false;
  ctx.every(
    1500,
    async () => {
      if (settled) return;
      await refresh();
      settled = !LIVE.has(state.detail.run.status);
    },
    problems,
  );
}

/** How an attempt ended, in a few words. */
function exitText(attempt) {
  if (!attempt) return "—";
  if (attempt.exit_code !== null && attempt.exit_code !== undefined) return `exit ${attempt.exit_code}`;
  if (attempt.signal) return `signal ${attempt.signal}`;
  if (attempt.end) return attempt.end.replace(/_/g, " ");
  return attempt.finished_ms ? "—" : "running";
}

/** `step` and every step downstream of it. */
function downstreamOf(graph, step) {
  const out = [step];
  for (let i = 0; i < out.length; i++) {
    for (const edge of graph.edges) {
      if (edge.from === out[i] && !out.includes(edge.to)) out.push(edge.to);
    }
  }
  return out;
}

/** The log viewer: a task's stdout or stderr, whole, or followed while the task runs. */
function logViewer(ctx) {
  const title = h("h2", { id: "log-title" }, "Log");
  const stateText = h("span", { class: "log-state", "aria-live": "polite" });
  const products = h("div", { class: "products" });
  const pre = h("pre", { class: "log", tabindex: 0, "aria-labelledby": "log-title" });
  const streams = ["stdout", "stderr"].map((name) =>
    h("button", { type: "button", class: "secondary", "aria-pressed": name === "stdout" ? "true" : "false", "data-stream": name, onclick: () => { view.stream = name; show(); } }, name),
  );
  const attempt = h("select", { "aria-label": "Attempt", onchange: () => { view.attempt = attempt.value ? Number(attempt.value) : null; show(); } });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const element = h(
    "section",
    { class: "log-viewer card", hidden: true, "aria-labelledby": "log-title" },
    h("div", { class: "log-head" }, title, h("span", { class: "tabs", role: "group", "aria-label": "Stream" }, streams), attempt, h("label", { for: "log-follow" }, follow, " keep at the end"), stateText),
    products,
    pre,
  );
  const view = { task: null, run: null, stream: "stdout", attempt: null, controller: null, attempts: -1 };

  function stop() {
    view.controller?.abort();
    view.controller = null;
  }
  ctx.signal.addEventListener("abort", stop);

  function append(line) {
    pre.append(`${line}\n`);
    while (pre.childNodes.length > MAX_LOG_LINES) pre.firstChild.remove();
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  }

  function drawProducts() {
    const paths = view.task.products;
    put(products, 
      paths.length
        ? h("p", {}, "Products: ", paths.map((path, i) => [i ? ", " : "", h("a", { href: withQuery("#/lineage", { path }), class: "path" }, path.split("/").pop())]), h("span", { class: "muted" }, " (their lineage)"))
        : null,
    );
  }

  function drawAttempts() {
    const numbers = view.task.attempts_detail.map((a) => a.number);
    view.attempts = numbers.length;
    put(attempt, h("option", { value: "" }, "latest attempt"), numbers.map((n) => h("option", { value: n, selected: view.attempt === n }, `attempt ${n}`)));
  }

  async function show() {
    stop();
    const task = view.task;
    const controller = new AbortController();
    view.controller = controller;
    ctx.signal.addEventListener("abort", () => controller.abort(), { once: true });
    for (const button of streams) button.setAttribute("aria-pressed", String(button.dataset.stream === view.stream));
    pre.replaceChildren();
    const path = withQuery(`/runs/${task.run}/tasks/${task.id}/logs`, { stream: view.stream, attempt: view.attempt });
    const live = (task.status === "running" || task.status === "pending") && LIVE.has(view.run.status);
    try {
      if (live) {
        stateText.textContent = task.status === "pending" ? "waiting for the task to start…" : "following…";
        await followLog(path, {
          attempt: (n) => {
            if (pre.childNodes.length) append(`── attempt ${n} ──`);
            stateText.textContent = `following attempt ${n}…`;
          },
          line: append,
          end: (data) => {
            stateText.textContent = `ended: ${data.status}`;
          },
        }, controller.signal);
      } else {
        stateText.textContent = "loading…";
        const text = await get(path, controller.signal);
        if (controller.signal.aborted) return;
        pre.textContent = text;
        stateText.textContent = task.attempts ? `${text ? "" : "empty · "}task ${task.status}` : "the task never started";
        if (follow.checked) pre.scrollTop = pre.scrollHeight;
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      stateText.textContent = "";
      pre.replaceChildren();
      pre.append(error instanceof ApiError ? `cannot read the log: ${error.message}` : `cannot read the log: ${error}`);
    }
  }

  return {
    element,
    open(task, run) {
      view.task = task;
      view.run = run;
      view.attempt = null;
      title.textContent = `Log of task ${task.id}: ${taskLabel(task)}`;
      element.hidden = false;
      drawAttempts();
      drawProducts();
      show();
      element.scrollIntoView({ block: "nearest" });
    },
    /** Keeps the viewer's task up to date; a task that finished is shown whole. */
    update(detail) {
      if (!view.task) return;
      const task = detail.tasks.find((t) => t.id === view.task.id);
      if (!task) return;
      const wasLive = view.controller && (view.task.status === "running" || view.task.status === "pending");
      const started = view.task.status === "pending" && task.status !== "pending";
      view.task = task;
      view.run = detail.run;
      if (task.attempts_detail.length !== view.attempts) drawAttempts();
      drawProducts();
      // A followed log goes on by itself (across retries too); a pending one starts once it runs.
      if (started && !wasLive) show();
    },
  };
}
