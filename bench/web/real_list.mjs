// The webmail on a large folder of a real `hato serve` (issue 13: "a
// 100,000-message folder opens in < 1 s and scrolls without loading the whole
// list"), timed in Chromium with the Performance API. Started by
// bench/webmail_bench.py, which fills the folder first.
// Env: HATO_URL, HATO_USER, HATO_PASS, BENCH_FOLDER, BENCH_TOTAL, CHROMIUM.
// Prints one JSON line.
import { createRequire } from "node:module";
const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const URL_ = process.env.HATO_URL;
const FOLDER = process.env.BENCH_FOLDER ?? "Big";
const TOTAL = Number(process.env.BENCH_TOTAL ?? "100000");
const ROW = 72; // web/src/list.tsx ROW_HEIGHT

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
// Count the JMAP requests and the bytes they bring (the whole list must not come).
let apiCalls = 0;
let apiBytes = 0;
page.on("response", async (r) => {
  if (r.url().includes("/jmap/api")) {
    apiCalls++;
    try {
      apiBytes += (await r.body()).length;
    } catch {
      /* the page moved on */
    }
  }
});
const login = await ctx.request.post(URL_ + "/web/login", { data: { username: process.env.HATO_USER, password: process.env.HATO_PASS }, headers: { Origin: URL_ } });
if (login.status() !== 200) throw new Error(`login: ${login.status()}`);
await page.goto(URL_ + "/");
await page.locator(`.folders a[data-name="${FOLDER}"]`).waitFor({ timeout: 60000 });
const ms = async (fn) => {
  const t0 = await page.evaluate(() => performance.now());
  await fn();
  return Math.round((await page.evaluate(() => performance.now())) - t0);
};
const runs = [];
for (let run = 0; run < 3; run++) {
  await page.click('.folders a[data-role="inbox"]'); // empty: the big folder opens afresh
  await page.locator('.list[data-total="0"]').waitFor({ timeout: 60000 });
  const callsBefore = apiCalls;
  const open = await ms(async () => {
    await page.click(`.folders a[data-name="${FOLDER}"]`);
    await page.locator(`.list[data-total="${TOTAL}"] .row:not(.placeholder)`).first().waitFor({ timeout: 60000 });
  });
  // Scroll a screen at a time, then jump to the middle: rows must come by paging.
  console.error(JSON.stringify({ run, openMs: open }));
  const scroll = await ms(async () => {
    for (let i = 1; i <= 5; i++) {
      await page.evaluate((y) => (document.querySelector(".list").scrollTop = y), i * 700);
    }
    await page.waitForFunction(() => document.querySelectorAll(".row.placeholder").length === 0 || document.querySelectorAll(".row:not(.placeholder)").length > 10, null, { timeout: 60000 });
  });
  console.error(JSON.stringify({ run, scrollMs: scroll }));
  const middle = Math.floor(TOTAL / 2);
  const jump = await ms(async () => {
    await page.evaluate((y) => (document.querySelector(".list").scrollTop = y), middle * ROW);
    await page.waitForFunction(
      (y) => {
        const list = document.querySelector(".list");
        const top = Math.floor(list.scrollTop / 72);
        // offsetTop, not style.top: past 1e6 px the CSSOM writes "3.59942e+06px",
        // which parseInt read as 3 (the jump then never "finished").
        return [...list.querySelectorAll(".row:not(.placeholder)")].some((r) => Math.abs(r.offsetTop / 72 - top) < 3);
      },
      middle * ROW,
      { timeout: 600000 },
    ).catch(async (e) => {
      const note = await page.locator(".list-note").allTextContents();
      throw new Error(`${e.message}; list note: ${note.join(" ")}`);
    });
  });
  const rowsInDom = await page.locator(".row").count();
  const readOne = await ms(async () => {
    const rows = page.locator(".row:not(.placeholder)");
    await rows.nth(Math.min(3, (await rows.count()) - 1)).click();
    await page.locator("article.reader .body-text, article.reader iframe").first().waitFor({ timeout: 60000 });
  });
  runs.push({ openMs: open, scrollMs: scroll, jumpToMiddleMs: jump, openMessageMs: readOne, rowsInDom, jmapRequests: apiCalls - callsBefore });
  console.error(JSON.stringify(runs[runs.length - 1]));
}
const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[1];
console.log(JSON.stringify({ total: TOTAL, openMs: median("openMs"), scrollMs: median("scrollMs"), jumpToMiddleMs: median("jumpToMiddleMs"), openMessageMs: median("openMessageMs"), rowsInDom: median("rowsInDom"), jmapRequestsPerRun: median("jmapRequests"), jmapBytesAll: apiBytes, runs }));
await browser.close();
