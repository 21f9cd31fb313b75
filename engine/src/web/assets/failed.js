// The failed-tasks page: every task that failed, across pipelines, and has not been run again
// since, with its last log lines and a Retry that starts a new run of its step's failed tasks.

import { get, post, canWrite, withQuery } from "./api.js";
import { h, when, errorBox, confirmAction, notify, taskLabel, updateRows } from "./ui.js";

export function failedPage(ctx, main) {
  const pipeline = ctx.query.get("pipeline") ?? "";
  const problems = h("div");
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const list = h("div", { class: "failed-list" });
  const empty = h("p", { class: "empty", hidden: true }, pipeline ? `No failed task of ${pipeline} waits for a retry.` : "No failed task waits for a retry.");
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, pipeline ? `Failed tasks of ${pipeline}` : "Failed tasks"), count),
    h("p", { class: "hint" }, "A task stays here until a newer task of the same step and group runs, succeeds or is cached.", pipeline ? [" ", h("a", { href: "#/failed" }, "Show every pipeline")] : null),
    problems,
    empty,
    list,
  );

  ctx.every(
    3000,
    async () => {
      const listing = await get(withQuery("/tasks/failed", { pipeline, lines: 8, limit: 100 }), ctx.signal);
      count.textContent = listing.total > listing.tasks.length ? `${listing.tasks.length} of ${listing.total}` : `${listing.total}`;
      empty.hidden = listing.tasks.length > 0;
      updateRows(list, listing.tasks, (f) => f.task.id, (f) => item(ctx, f), (f) => JSON.stringify([f, canWrite()]));
    },
    problems,
  );
}

function item(ctx, failed) {
  const { task, attempt } = failed;
  const lines = failed.stderr_tail.length ? failed.stderr_tail : failed.stdout_tail;
  const stream = failed.stderr_tail.length ? "stderr" : "stdout";
  const problem = h("div");
  const exit = attempt ? (attempt.exit_code !== null ? `exit ${attempt.exit_code}` : attempt.signal ? `signal ${attempt.signal}` : (attempt.end ?? "").replace(/_/g, " ")) : "never started";
  const retry = async () => {
    problem.replaceChildren();
    const ok = await confirmAction({
      title: `Retry ${task.step} of run ${task.run}?`,
      body: [
        `A new run of ${failed.pipeline} runs the failed tasks of step ${task.step} in run ${task.run} again (this one: ${taskLabel(task)}), with the tasks they blocked and what they need. Everything else is left alone.`,
        "Fix what made it fail first (an input, the command); a task whose inputs and command are unchanged fails the same way.",
      ],
      action: "Retry",
    });
    if (!ok) return;
    try {
      const answer = await post(`/runs/${task.run}/retry`, { step: task.step });
      notify(`Run ${answer.run} started: it retries ${task.step} of run ${task.run}.`);
      ctx.navigate(`#/runs/${answer.run}`);
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  };
  return h(
    "article",
    { class: "card failed-task", "data-task": task.id, "aria-label": `Failed task ${task.id}: ${failed.pipeline} ${taskLabel(task)}` },
    h("h2", {}, `${failed.pipeline} · ${taskLabel(task)}`),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Run"), h("dd", {}, h("a", { href: `#/runs/${task.run}` }, `run ${task.run}`), ` (${failed.run_status})`),
      h("dt", {}, "Task"), h("dd", {}, `${task.id} · ${task.attempts} attempt(s) · ${exit}`),
      h("dt", {}, "Failed"), h("dd", {}, when(task.finished_ms ?? attempt?.finished_ms)),
      attempt?.error ? [h("dt", {}, "Error"), h("dd", {}, attempt.error)] : null,
    ),
    lines.length ? [h("h3", {}, `Last lines of ${stream}`), h("pre", { class: "tail" }, lines.join("\n"))] : h("p", { class: "muted" }, "The task wrote nothing."),
    problem,
    h(
      "div",
      { class: "actions" },
      canWrite() ? h("button", { type: "button", class: "primary", "data-focus": "retry", "data-action": "retry", onclick: retry }, "Retry…") : h("span", { class: "muted" }, "Log in to retry."),
      h("a", { href: `#/runs/${task.run}` }, "Open the run"),
    ),
  );
}
