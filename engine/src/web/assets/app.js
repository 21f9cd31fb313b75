// The page's shell: works out what the session may do, draws the header, and routes
// `#/PAGE?QUERY` to a page. Each page gets a context whose signal aborts its requests, polls
// and log streams when another page opens.

import { session, checkSession, logIn, logOut } from "./api.js";
import { h, openDialog, closeDialog, errorBox, notify, clearOldNotices } from "./ui.js";
import { pipelinesPage } from "./pipelines.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { failedPage } from "./failed.js";
import { queuePage } from "./queue.js";
import { lineagePage } from "./lineage.js";

const ROUTES = [
  { pattern: /^\/pipelines$/, nav: "pipelines", title: "Pipelines", page: pipelinesPage },
  { pattern: /^\/runs$/, nav: "runs", title: "Runs", page: runsPage },
  { pattern: /^\/runs\/(\d+)$/, nav: "runs", title: "Run", page: runPage },
  { pattern: /^\/failed$/, nav: "failed", title: "Failed tasks", page: failedPage },
  { pattern: /^\/queue$/, nav: "queue", title: "Queue", page: queuePage },
  { pattern: /^\/lineage$/, nav: "lineage", title: "Lineage", page: lineagePage },
];

const main = () => document.getElementById("main");

/** The page shown now: its abort controller. */
let current = null;

/** What a page is handed. */
function context(controller, query) {
  const signal = controller.signal;
  return {
    signal,
    query,
    /** Goes to another page: `#/runs/3`. */
    navigate(hash) {
      location.hash = hash;
    },
    /** Runs `task` now and then every `ms` while the page is shown (not while the tab is
     * hidden). An error is shown in `slot` until a later call succeeds. */
    async every(ms, task, slot) {
      while (!signal.aborted) {
        try {
          await task();
          slot?.replaceChildren();
        } catch (error) {
          if (signal.aborted) return;
          slot?.replaceChildren(errorBox(error));
        }
        await pause(ms, signal);
        while (document.hidden && !signal.aborted) await pause(500, signal);
      }
    },
  };
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

function route() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(1) : "/pipelines";
  const [path, search] = hash.split("?", 2);
  current?.abort();
  current = new AbortController();
  clearOldNotices();
  document.getElementById("dialog").open && closeDialog(undefined);
  const found = ROUTES.map((r) => ({ route: r, match: path.match(r.pattern) })).find((r) => r.match);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (found && link.dataset.nav === found.route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const target = main();
  target.replaceChildren();
  if (session.mode === "locked") {
    document.title = "Log in · engine";
    target.append(loginPage());
    return;
  }
  if (!found) {
    document.title = "Not found · engine";
    target.append(h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/pipelines" }, "Go to the pipelines")));
    return;
  }
  document.title = `${found.route.title} · engine`;
  const ctx = context(current, new URLSearchParams(search ?? ""));
  try {
    found.route.page(ctx, target, found.match);
  } catch (error) {
    target.append(errorBox(error));
  }
  target.focus({ preventScroll: true });
}

/** The header's session part: the mode, and a way to log in or out. */
function drawSession() {
  const box = document.getElementById("session");
  if (session.mode === "full") {
    box.replaceChildren(
      h("span", { class: "mode" }, "Signed in"),
      h("button", { type: "button", class: "secondary", onclick: () => { logOut(); drawSession(); route(); } }, "Log out"),
    );
  } else if (session.mode === "read-only") {
    box.replaceChildren(
      h("span", { class: "mode", title: "Reads are public; actions need the API token" }, "Read-only"),
      h("button", { type: "button", class: "primary", onclick: askToken }, "Log in"),
    );
  } else {
    box.replaceChildren(h("span", { class: "mode" }, "Not signed in"));
  }
}

/** The token form: on success the session keeps the token and the page is drawn again. */
function tokenForm(onDone) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "token-help token-error" });
  const problem = h("p", { id: "token-error", class: "field-error", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "login" },
    // Password managers and screen readers expect a user name beside a password.
    h("input", { type: "text", name: "username", autocomplete: "username", value: "engine", hidden: true }),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "hint" }, "The daemon printed it on its first start; it is kept in STATE/api-token (.engine/api-token by default). It is kept in this tab until you log out or close it."),
    problem,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Log in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    input.removeAttribute("aria-invalid");
    if (!input.value.trim()) {
      problem.textContent = "Enter the token.";
      input.setAttribute("aria-invalid", "true");
      return;
    }
    try {
      if (await logIn(input.value)) {
        onDone();
      } else {
        problem.textContent = "That is not the daemon's token.";
        input.setAttribute("aria-invalid", "true");
        input.select();
      }
    } catch (error) {
      problem.textContent = `Cannot reach the daemon: ${error.message}`;
    }
  });
  return form;
}

function loginPage() {
  return h(
    "section",
    { class: "card narrow" },
    h("h1", {}, "Log in"),
    h("p", {}, "This daemon's API needs its token, even to read."),
    tokenForm(() => {
      drawSession();
      route();
    }),
  );
}

function askToken() {
  openDialog("Log in", tokenForm(() => {
    closeDialog(true);
    drawSession();
    route();
  }));
}

session.onLost = async () => {
  const before = session.mode;
  logOut();
  await checkSession();
  drawSession();
  if (before === "full") notify("The daemon no longer takes the token: log in again.");
  route();
};

async function start() {
  const dialog = document.getElementById("dialog");
  dialog.addEventListener("cancel", () => closeDialog(undefined));
  try {
    const verdict = await checkSession();
    if (verdict === "invalid") notify("The stored token is not the daemon's: log in again.");
  } catch (error) {
    main().replaceChildren(errorBox(new Error(`Cannot reach the daemon: ${error.message}`)));
    return;
  }
  drawSession();
  window.addEventListener("hashchange", route);
  route();
}

start();
