// The daemon's HTTP API as the page uses it: JSON requests with the bearer token (kept in
// sessionStorage for the browser tab's session, never put in a URL), and a task's log followed
// as server-sent events read from fetch(), since EventSource cannot send the token.

const TOKEN_KEY = "engine.token";

/** What the page may do: `full` (a valid token), `read-only` (public reads, no token) or
 * `locked` (reads need a token and there is none). */
export const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  mode: "locked",
  publicReads: false,
  /** Called when the daemon refuses the token in use (it changed, or was wrong). */
  onLost: () => {},
};

export function canWrite() {
  return session.mode === "full";
}

/** An error answer of the API: its status, message and details (e.g. the bad params of a 422). */
export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details ?? null;
  }
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  if (session.token) out.Authorization = `Bearer ${session.token}`;
  return out;
}

/** Asks the daemon what `token` allows; the answer is always 200. */
async function ask(token) {
  const response = await fetch("/auth", {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    cache: "no-store",
  });
  return response.json();
}

/** Works out the session's mode from the stored token. Returns `invalid` when a stored token was
 * refused (it is dropped). */
export async function checkSession() {
  const answer = await ask(session.token);
  session.publicReads = answer.public_reads;
  let verdict = answer.token;
  if (verdict === "invalid") {
    logOut();
  }
  session.mode = session.token ? "full" : answer.public_reads ? "read-only" : "locked";
  return verdict;
}

/** Keeps `token` for the session if the daemon takes it; returns whether it did. */
export async function logIn(token) {
  const answer = await ask(token.trim());
  if (answer.token !== "valid") return false;
  session.token = token.trim();
  sessionStorage.setItem(TOKEN_KEY, session.token);
  session.publicReads = answer.public_reads;
  session.mode = "full";
  return true;
}

export function logOut() {
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  session.mode = session.publicReads ? "read-only" : "locked";
}

async function request(method, path, body, signal) {
  const init = { method, headers: headers(), signal, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text && (response.headers.get("content-type") || "").includes("json")) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.error ?? (text || response.statusText), data?.details);
    if (response.status === 401 || response.status === 403) session.onLost(error);
    throw error;
  }
  return data ?? text;
}

export const get = (path, signal) => request("GET", path, undefined, signal);
export const post = (path, body, signal) => request("POST", path, body, signal);

/** A path with a query string made of the entries of `query` that have a value. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** Follows a task's log as server-sent events until its `end` event, `signal` aborts, or the
 * stream fails three times in a row. Calls `on.line(text)`, `on.attempt(n)`, `on.end(data)`.
 * A dropped stream is picked up again after the last line read (`Last-Event-ID`). */
export async function followLog(path, on, signal) {
  let lastId = null;
  let failures = 0;
  while (!signal.aborted) {
    let ended = false;
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId) extra["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers: headers(extra), signal, cache: "no-store" });
      if (!response.ok) {
        const text = await response.text();
        let message = text;
        try {
          message = JSON.parse(text).error;
        } catch {
          // not JSON: the text is the message
        }
        throw new ApiError(response.status, message);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        failures = 0;
        buffer += value.replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!event) continue;
          if (event.id) lastId = event.id;
          if (event.name === "attempt") on.attempt?.(JSON.parse(event.data).attempt);
          else if (event.name === "end") {
            ended = true;
            on.end?.(JSON.parse(event.data));
          } else if (event.name === "error") throw new ApiError(500, JSON.parse(event.data).error);
          else on.line?.(event.data);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
      failures += 1;
      if (failures >= 3) throw error;
    }
    if (ended) return;
    await sleep(1000, signal);
  }
}

/** One server-sent event block: its name (`message` by default), id and data. */
function parseEvent(block) {
  let name = "message";
  let id = null;
  const data = [];
  let any = false;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    any = true;
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return any ? { name, id, data: data.join("\n") } : null;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
