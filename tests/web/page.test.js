// The daemon's web page in a real browser: a real `engine daemon` on a temp dir, Debian's
// chromium driven by playwright-core. Each test goes through the page as a person would; any
// console error or page error the test did not provoke on purpose fails it. Screenshots of
// every page at 1280 and 390 px go to target/web-screenshots/.

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";

import { Daemon, WIDE, guard, launchBrowser, processRunning, shoot, waitFor } from "./support.js";

const FILES = {
  "hello.pipe": `pipeline hello {
  param greeting: string = "hello" matches "[a-z]+"
  param times: int = 1 in 1..5

  source texts {
    root "data/hello"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  step shout each file {
    input texts
    run "for i in $(seq {params.times}); do echo {params.greeting} $(cat {inputs}); done | tee {out}/shout.txt"
  }

  step total {
    input shout
    run "cat {inputs} > {out}/total.txt && echo total $(wc -l < {out}/total.txt)"
    output "total.txt"
  }
}
`,
  "data/hello/a.txt": "alpha\n",
  "data/hello/b.txt": "beta\n",
  "long.pipe": `pipeline long {
  param seconds: int = 317 in 1..1000

  step wait {
    run "echo started; sleep {params.seconds}; echo finished > {out}/done"
  }
}
`,
  "fragile.pipe": `pipeline fragile {
  source samples {
    root "data/fragile"
    glob "*.txt"
    group sample by regex "^(?P<sample>[^/]+)[.]txt$"
  }

  step check each sample {
    input samples
    run "if grep -q good {inputs}; then cat {inputs} > {out}/checked.txt; else echo \\"bad input: $(cat {inputs})\\" >&2; exit 3; fi"
  }

  step summary {
    input check
    run "cat {inputs} > {out}/summary.txt"
  }
}
`,
  "data/fragile/a.txt": "good a\n",
  "data/fragile/b.txt": "rotten\n",
};

let daemon;
let browser;
let page;
let errors;
/** The run triggered from the page, reused by later tests. */
let helloRun;

before(async () => {
  [daemon, browser] = await Promise.all([Daemon.start(FILES), launchBrowser()]);
  const context = await browser.newContext({ viewport: WIDE });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  errors = guard(page);
});

afterEach(() => errors.check());

after(async () => {
  await browser?.close();
  await daemon?.stop();
});

const runId = () => Number(page.url().match(/#\/runs\/(\d+)$/)?.[1]);

/** Waits for the page to show a run other than `before`, and returns its id. */
async function newRun(before) {
  await page.waitForURL((url) => {
    const id = url.hash.match(/^#\/runs\/(\d+)$/)?.[1];
    return id !== undefined && Number(id) !== before;
  });
  return runId();
}

async function openRun(id) {
  await page.goto(`${daemon.base}/#/runs/${id}`);
  await page.locator("h1", { hasText: `Run ${id}` }).waitFor();
}

async function waitStatus(status, timeout = 20000) {
  await page.locator(`.page-head .badge.status-${status}`).waitFor({ timeout });
}

/** The state of a step's node in the run page's DAG. */
const nodeState = (step) => page.locator(`.dag g.node[data-node="${step}"]`).getAttribute("data-state");

test("asks for the token once, refuses a wrong one and keeps the right one for the session", async () => {
  await page.goto(`${daemon.base}/`);
  await page.getByRole("heading", { name: "Log in" }).waitFor();
  await shoot(page, "login");
  await page.getByLabel("API token").fill("not-the-token");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("That is not the daemon's token.").waitFor();
  await page.getByLabel("API token").fill(daemon.token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Pipelines" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("engine.token")), daemon.token);
  assert.ok(!page.url().includes(daemon.token), "the token is never in the address");
  await page.reload();
  await page.getByRole("heading", { name: "Pipelines" }).waitFor();
  await page.getByText("Signed in").waitFor();
});

test("triggers a pipeline with a param from a generated form, shows the daemon's verdict per field, and follows the run to its DAG and logs", async () => {
  await page.goto(`${daemon.base}/#/pipelines`);
  const card = page.locator('section[data-pipeline="hello"]');
  await card.waitFor();
  await card.getByText("shout: 2").waitFor(); // the gap, scanned when the page opened
  assert.match(await page.locator('section[data-pipeline="fragile"]').innerText(), /check: 2/);

  // The Trigger button is reachable from the keyboard.
  const trigger = card.getByRole("button", { name: "Trigger…" });
  for (let i = 0; i < 40 && !(await trigger.evaluate((b) => b === document.activeElement)); i++) await page.keyboard.press("Tab");
  assert.ok(await trigger.evaluate((b) => b === document.activeElement), "Tab reaches the Trigger button");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Trigger hello" });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel("times").getAttribute("inputmode"), "numeric");

  await dialog.getByLabel("greeting").fill("Bonjour!");
  await dialog.getByLabel("times").fill("9");
  errors.allow(/status of 422/);
  await dialog.getByRole("button", { name: "Trigger run" }).click();
  const greetingError = dialog.locator("#param-greeting-error");
  await greetingError.getByText("Bonjour!").waitFor();
  assert.match(await dialog.locator("#param-times-error").innerText(), /`9` is not/);
  assert.equal(await dialog.getByLabel("times").getAttribute("aria-invalid"), "true");
  await shoot(page, "trigger-form-errors");

  await dialog.getByLabel("greeting").fill("bonjour");
  await dialog.getByLabel("times").fill("2");
  await dialog.getByRole("button", { name: "Trigger run" }).click();
  helloRun = await newRun(null);
  await waitStatus("succeeded");
  assert.equal(await nodeState("shout"), "succeeded");
  assert.equal(await nodeState("total"), "succeeded");
  assert.equal(await page.locator('.dag g.node[data-node="texts"]').count(), 1, "the source is drawn");
  assert.equal(await page.locator(".dag path.edge").count(), 2);

  await page.locator('tr[data-step="shout"]').first().getByRole("button", { name: /Log of task/ }).click();
  const log = page.locator("pre.log");
  await log.getByText("bonjour alpha").waitFor();
  assert.equal((await log.innerText()).match(/bonjour alpha/g).length, 2, "the param reached the command");
  await shoot(page, "run");

  await page.locator('tr[data-step="total"]').getByRole("button", { name: /Log of task/ }).click();
  await log.getByText("total 4").waitFor();
  await page.locator(".products a").first().click();
  await page.waitForURL(/#\/lineage\?path=/);
  await page.locator("details summary code", { hasText: "total.txt" }).waitFor();
  await page.locator(".lineage pre", { hasText: "tee" }).first().waitFor();
  await shoot(page, "lineage");

  await page.goto(`${daemon.base}/#/runs?pipeline=hello`);
  await page.locator(`tr[data-run="${helloRun}"][data-status="succeeded"]`).waitFor();
  await shoot(page, "runs");
});

test("triggers a long run from the page, follows its log live and cancels it; the processes are gone", async () => {
  await page.goto(`${daemon.base}/#/runs`);
  await page.locator("tr[data-run]").first().waitFor();
  await page.goto(`${daemon.base}/#/pipelines`);
  await page.locator('section[data-pipeline="long"]').getByRole("button", { name: "Trigger…" }).click();
  const form = page.getByRole("dialog", { name: "Trigger long" });
  assert.match(await form.innerText(), /empty for the default, 317/);
  await form.getByRole("button", { name: "Trigger run" }).click();
  const run = await newRun(helloRun);
  await waitStatus("running");
  // The runs table shows it running, and then cancelled, without a reload.
  await page.goto(`${daemon.base}/#/runs`);
  await page.locator(`tr[data-run="${run}"][data-status="running"]`).waitFor();
  await page.locator(`tr[data-run="${run}"] a`).click();
  await waitStatus("running");
  await page.getByRole("button", { name: "Follow log" }).click();
  await page.locator("pre.log").getByText("started").waitFor();
  assert.match(await page.locator(".log-state").innerText(), /following/);
  assert.ok(processRunning("sleep 317"), "the task's process runs");

  await page.getByRole("button", { name: "Cancel run" }).click();
  const confirm = page.getByRole("dialog", { name: `Cancel run ${run}?` });
  assert.match(await confirm.innerText(), /SIGTERM/);
  await confirm.getByRole("button", { name: "Cancel run" }).click();
  await waitStatus("cancelled");
  await page.locator(".log-state", { hasText: "ended: cancelled" }).waitFor();
  await waitFor("the task's processes to be gone", () => !processRunning("sleep 317"), 10000);
  assert.equal(await nodeState("wait"), "cancelled");
  await page.goBack();
  await page.locator(`tr[data-run="${run}"][data-status="cancelled"]`).waitFor();
});

test("a failed step is retried from the failed-tasks page once its input is fixed", async () => {
  await page.goto(`${daemon.base}/#/runs?pipeline=fragile`);
  await page.getByText("No run matches.").waitFor();
  const { run } = await daemon.api("POST", "/pipelines/fragile/trigger", {});
  // The live table shows the new run, and then its end, with no reload and no navigation.
  const url = page.url();
  await page.evaluate(() => (window.notReloaded = true));
  await page.locator(`tr[data-run="${run}"][data-status="failed"]`).waitFor();
  assert.equal(page.url(), url);
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  await page.goto(`${daemon.base}/#/failed`);
  const failed = page.locator("article.failed-task", { hasText: "check [b]" });
  await failed.locator("pre.tail", { hasText: "bad input: rotten" }).waitFor();
  assert.match(await failed.innerText(), /exit 3/);
  await shoot(page, "failed");

  daemon.write("data/fragile/b.txt", "good b\n");
  await failed.getByRole("button", { name: "Retry…" }).click();
  const confirm = page.getByRole("dialog", { name: `Retry check of run ${run}?` });
  assert.match(await confirm.innerText(), /failed tasks of step check/);
  await confirm.getByRole("button", { name: "Retry" }).click();
  const retry = await newRun(run);
  await waitStatus("succeeded");
  assert.equal(await nodeState("summary"), "succeeded");
  assert.match(await page.locator('tr[data-step="check"][data-status="cached"]').innerText(), /cached/);
  assert.equal((await daemon.run(retry)).trigger, `retry of ${run}`);

  await page.goto(`${daemon.base}/#/failed`);
  await page.getByText("No failed task waits for a retry.").waitFor();
});

test("reruns a finished run from a step: that step runs again, the steps before it are cached", async () => {
  await openRun(helloRun);
  await waitStatus("succeeded");
  await page.locator('.dag g.node[data-node="total"]').click(); // choosing a step in the DAG picks it
  assert.equal(await page.locator("#rerun-from").inputValue(), "total");
  await page.getByRole("button", { name: "Rerun from step…" }).click();
  const confirm = page.getByRole("dialog", { name: `Rerun run ${helloRun} from step total?` });
  assert.match(await confirm.innerText(), /discards the cached results/);
  await confirm.getByRole("button", { name: "Rerun from total" }).click();
  const rerun = await newRun(helloRun);
  await waitStatus("succeeded");
  assert.equal(await nodeState("shout"), "cached");
  assert.equal(await nodeState("total"), "succeeded");
  assert.match(await page.locator('tr[data-step="total"]').innerText(), /forced/);
  assert.deepEqual((await daemon.run(rerun)).params.greeting, { type: "string", value: "bonjour" });
});

test("pausing new task starts holds a run's tasks until starts resume", async () => {
  await page.goto(`${daemon.base}/#/queue`);
  await page.getByRole("button", { name: "Pause new starts" }).click();
  await page.locator('[data-paused="true"]').waitFor();
  assert.match(await daemon.api("GET", "/metrics"), /^engine_queue_paused 1$/m);

  const { run } = await daemon.api("POST", "/pipelines/hello/trigger", { params: { greeting: "paused" } });
  await page.locator(".queue-waiting tr", { hasText: "shout [a]" }).waitFor();
  await page.waitForTimeout(1000);
  assert.equal(await page.locator(".queue-running tbody tr").count(), 0, "nothing starts while paused");
  const tasks = (await daemon.api("GET", `/runs/${run}`)).tasks;
  assert.ok(tasks.every((t) => t.status === "pending" && t.attempts === 0), JSON.stringify(tasks));
  await shoot(page, "queue");

  await page.getByRole("button", { name: "Resume starts" }).click();
  await page.locator('[data-paused="false"]').waitFor();
  await daemon.waitRun(run, "succeeded");
  assert.match(await daemon.api("GET", "/metrics"), /^engine_queue_paused 0$/m);
});

test("every page at 1280 and 390 px, and the pipelines page", async () => {
  await page.goto(`${daemon.base}/#/pipelines`);
  await page.locator('section[data-pipeline="long"]').waitFor();
  await page.locator(".gap-none").first().waitFor();
  await shoot(page, "pipelines");
  // The narrow run page draws its DAG top to bottom.
  await page.setViewportSize({ width: 390, height: 844 });
  await openRun(helloRun);
  await page.locator(".dag svg").waitFor();
  const box = await page.locator(".dag svg").boundingBox();
  assert.ok(box.height > box.width, `a tall DAG at 390 px: ${JSON.stringify(box)}`);
  await page.setViewportSize(WIDE);
});

test("without a token the page is read-only when reads are public", async () => {
  const open = await Daemon.start({ "hello.pipe": FILES["hello.pipe"], "data/hello/a.txt": "alpha\n" }, ["--public-reads"]);
  const context = await browser.newContext({ viewport: WIDE });
  const reader = await context.newPage();
  const readerErrors = guard(reader);
  try {
    await reader.goto(`${open.base}/#/pipelines`);
    await reader.locator('section[data-pipeline="hello"]').waitFor();
    await reader.getByText("Read-only").waitFor();
    assert.equal(await reader.getByRole("button", { name: "Trigger…" }).count(), 0);
    const { run } = await open.api("POST", "/pipelines/hello/trigger", {});
    await open.waitRun(run, "succeeded");
    await reader.goto(`${open.base}/#/runs/${run}`);
    await reader.getByText("Read-only: log in to cancel").waitFor();
    await shoot(reader, "read-only-run");
    await reader.getByRole("button", { name: "Log in" }).click();
    await reader.getByRole("dialog", { name: "Log in" }).getByLabel("API token").fill(open.token);
    await reader.keyboard.press("Enter");
    await reader.getByRole("button", { name: "Rerun", exact: true }).waitFor();
    readerErrors.check();
  } finally {
    await context.close();
    await open.stop();
  }
});
