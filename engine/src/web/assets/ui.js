// Building blocks of the pages: elements made without innerHTML (every text from the daemon
// goes in as text), status badges that read without colour, times, sizes, the confirmation
// dialog, and tables whose rows are replaced only when they change (so focus stays put).

/** An element: `h("a", {href: "#/runs", class: "x", onclick: f}, "text", child, [more])`. */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  return fill(element, attrs, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element, with attributes as `h` takes them. */
export function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  return fill(element, attrs, children);
}

function fill(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "text") {
      element.textContent = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Replaces `element`'s children with `children`, taken as `h` takes them (arrays flattened,
 * `null` and `false` left out). */
export function put(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(String(child));
  }
}

/** Icons and words for every run and task status; the word is always shown beside the icon. */
export const STATUS = {
  queued: "◷",
  pending: "◷",
  running: "▶",
  succeeded: "✓",
  cached: "≡",
  failed: "✗",
  cancelled: "⊘",
  interrupted: "!",
  blocked: "⊟",
  held: "⏸",
  not_started: "○",
};

export function badge(status) {
  return h(
    "span",
    { class: `badge status-${status}` },
    h("span", { class: "icon", "aria-hidden": "true" }, STATUS[status] ?? "•"),
    " ",
    status,
  );
}

/** `ms` since the epoch as a <time>: how long ago (or from now), the exact time in its title. */
export function when(ms) {
  if (ms === null || ms === undefined) return h("span", { class: "muted" }, "—");
  const date = new Date(ms);
  return h("time", { datetime: date.toISOString(), title: date.toLocaleString() }, relative(ms));
}

export function relative(ms) {
  const seconds = Math.round((ms - Date.now()) / 1000);
  const size = Math.abs(seconds);
  const [amount, unit] =
    size < 60 ? [size, "s"] : size < 3600 ? [Math.round(size / 60), "min"] : size < 86400 ? [Math.round(size / 3600), "h"] : [Math.round(size / 86400), "d"];
  if (size < 2) return "now";
  return seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Why a task ran or was cached, in words (as `engine show` says it). */
export function reasonText(reason) {
  if (!reason) return "not decided yet";
  const list = (items) => (items.length <= 3 ? items.join(", ") : `${items.slice(0, 2).join(", ")}, … (${items.length} in all)`);
  switch (reason.reason) {
    case "cached":
      return `cached (same as task ${reason.detail.task})`;
    case "new":
      return "new input";
    case "inputs_changed":
      return `changed input: ${list(reason.detail)}`;
    case "definition_changed":
      return "changed command";
    case "params_changed":
      return `changed param: ${list(reason.detail)}`;
    case "upstream_changed":
      return "upstream changed";
    case "products_missing":
      return `product missing or modified: ${reason.detail}`;
    case "forced":
      return "forced (rerun)";
    case "retry":
      return "previous attempt failed";
    case "failed_before":
      return `failed after its retries in run ${reason.detail.run} (task ${reason.detail.task}); triggers hold it for a retry by hand`;
    case "held":
      return `held: task ${reason.detail.task} failed after its retries in run ${reason.detail.run}; waits for a retry by hand (Retry on run ${reason.detail.run}) or changed inputs`;
    default:
      return reason.reason;
  }
}

/** `step [group]`. */
export function taskLabel(task) {
  return task.group ? `${task.step} [${task.group}]` : task.step;
}

/** A message about what went wrong, for a page or a form. */
export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error?.message ?? String(error));
}

const dialog = () => document.getElementById("dialog");

/** Opens the modal dialog with `content` (a form or a message); resolves with what `close` is
 * given when it closes (`undefined` on Escape). */
export function openDialog(title, content) {
  const box = dialog();
  const heading = h("h2", { id: "dialog-title" }, title);
  box.setAttribute("aria-labelledby", "dialog-title");
  box.replaceChildren(heading, content);
  return new Promise((resolve) => {
    let result;
    box.returnHandler = (value) => {
      result = value;
      box.close();
    };
    box.addEventListener(
      "close",
      () => {
        box.replaceChildren();
        resolve(result);
      },
      { once: true },
    );
    box.showModal();
    const first = box.querySelector("[autofocus], input, select, textarea");
    first?.focus();
  });
}

export function closeDialog(value) {
  dialog().returnHandler?.(value);
}

/** Asks before an action: `body` says what will happen. Resolves to whether it was confirmed. */
export async function confirmAction({ title, body, action, danger = false }) {
  const content = h(
    "div",
    { class: "confirm" },
    (Array.isArray(body) ? body : [body]).map((text) => h("p", {}, text)),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", class: "secondary", onclick: () => closeDialog(false) }, "Back"),
      h("button", { type: "button", class: danger ? "danger" : "primary", autofocus: true, onclick: () => closeDialog(true) }, action),
    ),
  );
  return (await openDialog(title, content)) === true;
}

/** A short message at the top of the page, read out by screen readers. */
export function notify(text, link) {
  const region = document.getElementById("notice");
  const message = h("div", { class: "note", "data-at": Date.now() }, text, link ? [" ", link] : null, h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => message.remove() }, "×"));
  region.replaceChildren(message);
  setTimeout(() => message.remove(), 10000);
}

/** Drops notices older than a moment: they were about the page left behind. */
export function clearOldNotices() {
  for (const note of document.querySelectorAll("#notice .note")) {
    if (Date.now() - Number(note.dataset.at) > 1500) note.remove();
  }
}

/** Brings `tbody`'s rows in line with `items`: a row is made again only when its signature (the
 * JSON of what it shows) changed. Focus inside a replaced row moves to the new row's element
 * with the same `data-focus` name. */
export function updateRows(tbody, items, key, render, signature = (item) => JSON.stringify(item)) {
  const old = new Map([...tbody.children].map((row) => [row.dataset.key, row]));
  const focused = document.activeElement;
  let before = tbody.firstChild;
  for (const item of items) {
    const id = String(key(item));
    const sig = signature(item);
    let row = old.get(id);
    old.delete(id);
    if (!row || row.dataset.sig !== sig) {
      const fresh = render(item);
      fresh.dataset.key = id;
      fresh.dataset.sig = sig;
      if (row) {
        const focusName = row.contains(focused) ? focused.dataset?.focus : null;
        if (before === row) before = fresh;
        row.replaceWith(fresh);
        if (focusName) fresh.querySelector(`[data-focus="${focusName}"]`)?.focus();
      }
      row = fresh;
    }
    if (row !== before) tbody.insertBefore(row, before);
    before = row.nextSibling;
  }
  for (const row of old.values()) row.remove();
}

/** A table with a caption (for screen readers), column headings and an empty body. Cells get a
 * `data-label` so narrow screens can show each row as a card. */
export function table(caption, columns, className = "") {
  const body = h("tbody");
  const element = h(
    "table",
    { class: className },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
    body,
  );
  return { element: h("div", { class: "table-wrap" }, element), body, columns };
}

/** A row for `table`'s columns: one cell per value. */
export function row(columns, cells, attrs = {}) {
  return h(
    "tr",
    attrs,
    cells.map((cell, i) => h("td", { "data-label": columns[i] }, cell)),
  );
}
