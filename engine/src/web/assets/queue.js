// The queue page: the tasks running and waiting in every live run, refreshed every two
// seconds, and the daemon-wide pause of new task starts (running tasks go on).

import { get, post, canWrite } from "./api.js";
import { h, when, duration, errorBox, table, row, updateRows, taskLabel } from "./ui.js";

export function queuePage(ctx, main) {
  const problems = h("div");
  const banner = h("div", { "aria-live": "polite" });
  const running = table("Running tasks", ["Task", "Pipeline", "Run", "Step [group]", "Attempt", "Running for", "Process"], "queue-running");
  const waiting = table("Waiting tasks", ["Task", "Pipeline", "Run", "Step [group]", "Attempts so far"], "queue-waiting");
  const runningEmpty = h("p", { class: "empty" }, "No task is running.");
  const waitingEmpty = h("p", { class: "empty" }, "No task is waiting.");
  const runningCount = h("span", { class: "muted" });
  const waitingCount = h("span", { class: "muted" });
  main.append(
    h("h1", {}, "Queue"),
    banner,
    problems,
    h("h2", {}, "Running ", runningCount),
    running.element,
    runningEmpty,
    h("h2", {}, "Waiting ", waitingCount),
    h("p", { class: "hint" }, "Waiting for upstream tasks, a free slot, a retry's backoff, or for starts to resume."),
    waiting.element,
    waitingEmpty,
  );

  let paused = null;
  const problem = h("div");
  async function toggle() {
    problem.replaceChildren();
    try {
      const answer = await post(paused ? "/queue/resume" : "/queue/pause");
      paused = answer.paused;
      drawBanner();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  }
  function drawBanner() {
    const text = paused
      ? [h("strong", {}, "‖ New task starts are paused."), " Running tasks go on; nothing new starts in any run until starts resume."]
      : [h("strong", {}, "▶ Tasks start as slots free up."), " Pausing stops new starts in every run of the daemon; running tasks go on."];
    const button = canWrite()
      ? h("button", { type: "button", class: paused ? "primary" : "danger", "data-action": paused ? "resume-starts" : "pause-starts", onclick: toggle }, paused ? "Resume starts" : "Pause new starts")
      : h("span", { class: "muted" }, "Log in to pause or resume.");
    const focused = banner.contains(document.activeElement);
    banner.replaceChildren(h("div", { class: paused ? "warning" : "card", "data-paused": String(paused) }, h("p", {}, text), button), problem);
    if (focused) banner.querySelector("button")?.focus();
  }

  ctx.every(
    2000,
    async () => {
      const queue = await get("/queue", ctx.signal);
      if (queue.paused !== paused) {
        paused = queue.paused;
        drawBanner();
      }
      runningCount.textContent = `(${queue.running.length})`;
      waitingCount.textContent = `(${queue.waiting.length})`;
      runningEmpty.hidden = queue.running.length > 0;
      waitingEmpty.hidden = queue.waiting.length > 0;
      updateRows(running.body, queue.running, (t) => t.task, (t) => row(running.columns, [
        t.task,
        t.pipeline,
        h("a", { href: `#/runs/${t.run}` }, `run ${t.run}`),
        taskLabel(t),
        t.attempts,
        t.started_ms ? [duration(Date.now() - t.started_ms), " (", when(t.started_ms), ")"] : "—",
        t.slurm_job ? `SLURM job ${t.slurm_job}` : t.pid ? `pid ${t.pid}` : "—",
      ], { "data-task": t.task }), (t) => JSON.stringify([t, Math.floor(Date.now() / 1000)]));
      updateRows(waiting.body, queue.waiting, (t) => t.task, (t) => row(waiting.columns, [
        t.task,
        t.pipeline,
        h("a", { href: `#/runs/${t.run}` }, `run ${t.run}`),
        taskLabel(t),
        t.attempts,
      ], { "data-task": t.task }));
    },
    problems,
  );
}
