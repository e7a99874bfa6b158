// Webmail list benchmark: how long a 100,000-message folder takes to open
// and to jump to the middle, with the Performance API, against mock_jmap.py.
// Run: python3 bench/web/mock_jmap.py build/web 18932 & node bench/web/list.mjs
import { createRequire } from "node:module";
const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox","--disable-gpu"] });
const p = await b.newPage({ viewport: { width: 1280, height: 800 } });
await p.goto(process.env.MOCK_URL ?? "http://127.0.0.1:18932/");
await p.locator(".row").first().waitFor();
await p.click('.folders a[data-role="archive"]');
await p.waitForTimeout(500);
await p.evaluate(() => { window.__t0 = performance.now(); document.querySelector('.folders a[data-role="inbox"]').click(); });
await p.locator('.list[data-total="100000"] .row:not(.placeholder)').first().waitFor();
const open = await p.evaluate(() => performance.now() - window.__t0);
await p.evaluate(() => { window.__t1 = performance.now(); document.querySelector(".list").scrollTop = 72 * 73123; });
await p.locator('.row[data-id="e73125"]').waitFor();
const jump = await p.evaluate(() => performance.now() - window.__t1);
const dom = await p.locator(".row").count();
console.log(JSON.stringify({ openMs: Math.round(open), jumpScrollMs: Math.round(jump), rowsInDom: dom }));
await b.close();
