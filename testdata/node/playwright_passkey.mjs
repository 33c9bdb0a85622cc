// The Playwright step of docs/ci.md: a browser driven by Playwright
// registers and signs in on a web page with the security key vkey makes
// (`vkey run --presence auto --ephemeral`, started before this script).
// internal/browsertest runs it in its qemu guest against Debian's chromium
// and the test page (internal/browsertest/guest/page.html), which checks
// the results itself and writes "done: ok" or a FAILED line into #log.
//
// Environment:
//   VKEY_APP_URL       the page (default: the test page, a non-discoverable
//                      credential without a PIN)
//   VKEY_CHROMIUM      a Chromium executable (Debian: /usr/bin/chromium);
//                      unset, Playwright's own full Chromium (channel
//                      "chromium"; npx playwright-core install chromium)
//   VKEY_CHROMIUM_ARGS extra command-line flags, separated by spaces
//   VKEY_TIMEOUT_MS    how long the browser may take to start, and the page
//                      to finish (default 180000 each)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.VKEY_APP_URL || "http://localhost:8080/?case=playwright&rk=0";
const timeout = Number(process.env.VKEY_TIMEOUT_MS || 180000);
const args = (process.env.VKEY_CHROMIUM_ARGS || "").split(" ").filter(Boolean);

const started = Date.now();
// A persistent context is the browser's ordinary profile: chromium.launch()
// then newPage() would open the page in an off-the-record context.
const profile = await mkdtemp(join(tmpdir(), "vkey-playwright-"));
const executable = process.env.VKEY_CHROMIUM
  ? { executablePath: process.env.VKEY_CHROMIUM }
  : // Playwright's full Chromium build, not its headless shell (channel
    // "chromium": the new headless mode).
    { channel: "chromium" };
const context = await chromium.launchPersistentContext(profile, {
  ...executable,
  // Full Chromium in its new headless mode finds USB security keys; no
  // PIN means no browser dialog, which headless Chromium could not show.
  headless: true,
  args,
  timeout,
});
console.log(`playwright: ${context.browser()?.version() ?? "chromium"} started in ${Date.now() - started} ms`);
let failed = true;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console.log(`page [${Date.now() - started} ms]:`, m.text()));
  await page.goto(url);
  // The page logs one line per step, "done: ..." last.
  await page.waitForFunction(() => /(^|\n)done: /.test(document.getElementById("log").textContent), null, { timeout });
  const log = await page.textContent("#log");
  console.log(log.trim());
  failed = /FAILED/.test(log);
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
console.log(failed ? "playwright: FAILED" : "playwright: passkey registered and used");
process.exit(failed ? 1 : 0);
