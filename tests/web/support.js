// What the browser tests stand on: a real `engine daemon` on a temp dir, Debian's chromium
// driven by playwright-core, a guard that fails a test on any console error or page error it
// did not expect by name, and screenshots at both widths.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const engineBin = process.env.ENGINE_BIN ?? path.join(repo, "target/debug/engine");
export const chromiumBin = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const shotsDir = process.env.SCREENSHOTS_DIR ?? path.join(repo, "target/web-screenshots");
export const WIDE = { width: 1280, height: 900 };
export const NARROW = { width: 390, height: 844 };

export async function waitFor(what, check, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A daemon on a temp dir holding `files` (path → text) under `pipes/`. */
export class Daemon {
  static async start(files, extraArgs = []) {
    if (!fs.existsSync(engineBin)) {
      throw new Error(`no engine binary at ${engineBin}: build it (cargo build -p engine) or set ENGINE_BIN`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-web-"));
    for (const [name, text] of Object.entries(files)) {
      const file = path.join(dir, "pipes", name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
    const logPath = path.join(dir, "daemon.log");
    const log = fs.openSync(logPath, "w");
    const child = spawn(
      engineBin,
      ["daemon", "--dir", "pipes", "--listen", "127.0.0.1:0", "--state", ".engine", "--jobs", "2", "--grace", "2", ...extraArgs],
      { cwd: dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "ignore", log] },
    );
    fs.closeSync(log);
    const daemon = new Daemon(dir, child, logPath);
    const address = await waitFor("the daemon to listen", () => {
      const text = daemon.log();
      if (child.exitCode !== null) throw new Error(`the daemon exited (${child.exitCode}):\n${text}`);
      return text.includes("pipeline loaded") && text.match(/listen=(\S+)/)?.[1];
    });
    daemon.base = `http://${address}`;
    daemon.token = fs.readFileSync(path.join(dir, ".engine", "api-token"), "utf8").trim();
    return daemon;
  }

  constructor(dir, child, logPath) {
    this.dir = dir;
    this.child = child;
    this.logPath = logPath;
  }

  log() {
    return fs.readFileSync(this.logPath, "utf8");
  }

  /** A file under `pipes/`. */
  write(name, text) {
    fs.writeFileSync(path.join(this.dir, "pipes", name), text);
  }

  async api(method, route, body) {
    const response = await fetch(this.base + route, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
    return response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  }

  async run(id) {
    return (await this.api("GET", `/runs/${id}`)).run;
  }

  async waitRun(id, status, timeout = 20000) {
    return waitFor(`run ${id} to be ${status}`, async () => (await this.run(id)).status === status, timeout);
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  if (!fs.existsSync(chromiumBin)) {
    throw new Error(`no chromium at ${chromiumBin}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath: chromiumBin,
    // As root, chromium runs only without its sandbox; the rest keeps it off the network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * Records every console error and page error of `page`. `allow(pattern)` lets exactly one
 * message matching it through (an error response the test provokes on purpose); `check()`
 * throws on anything else.
 */
export function guard(page) {
  const unexpected = [];
  const allowed = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    const i = allowed.findIndex((pattern) => pattern.test(text));
    if (i >= 0) allowed.splice(i, 1);
    else unexpected.push(`console error on ${page.url()}: ${text}`);
  });
  page.on("pageerror", (error) => unexpected.push(`page error on ${page.url()}: ${error.message}`));
  return {
    allow(pattern) {
      allowed.push(pattern);
    },
    check() {
      const found = unexpected.splice(0);
      if (found.length) throw new Error(found.join("\n"));
    },
  };
}

/** Full-page screenshots of what `page` shows at 1280 and 390 px wide, as NAME-1280.png and
 * NAME-390.png. The page may not show a JavaScript value by mistake (`null`, `undefined`,
 * `[object ...]`, `NaN`), nor stick out sideways at either width. Ends at 1280 px. */
export async function shoot(page, name) {
  fs.mkdirSync(shotsDir, { recursive: true });
  const text = await page.locator("body").innerText();
  const slip = text.match(/\bnull\b|\bundefined\b|\[object \w+\]|\bNaN\b/);
  if (slip) throw new Error(`${name} shows \`${slip[0]}\`:\n${text}`);
  for (const size of [WIDE, NARROW]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(shotsDir, `${name}-${size.width}.png`), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (overflow > 0) throw new Error(`${name} at ${size.width} px is ${overflow} px wider than the window`);
  }
  await page.setViewportSize(WIDE);
}

/** Whether any process runs a command line containing `text` (read from /proc). */
export function processRunning(text) {
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const line = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (line.includes(text)) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
