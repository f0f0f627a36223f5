// A receipt that grows, in headless Chromium, for tests/tests/portal.rs: a person applies on a
// co-op whose checkpoints another co-op witnesses and a chain (anvil) anchors; the receipt in
// the page first says it is not yet witnessed or anchored, then — as the cosigned checkpoint
// and the anchor receipt arrive, each checked in the page — names the witness and the block.
// WORK holds url. Writes shots/*.png, prints a JSON report.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const url = readFileSync(join(work, "url"), "utf8").trim();
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { errors: [], missing: [] };
const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  watch(page, report.errors);
  await page.goto(`${url}/?lang=en#/me`);
  await page.click("text=Make this device's key");
  await page.waitForSelector("form button[type=submit]");
  await page.click("form button[type=submit]");
  await page.waitForSelector("[data-testid=receipt-line]", { timeout: 30000 });
  report.line = await page.innerText("[data-testid=receipt-line]");
  await page.waitForSelector("[data-testid=receipt-witnessed]", { timeout: 60000 });
  report.witnessed = await page.innerText("[data-testid=receipt-witnessed]");
  await page.waitForSelector("[data-testid=receipt-anchored]", { timeout: 60000 });
  report.anchored = await page.innerText("[data-testid=receipt-anchored]");
  report.problem = (await page.$("[data-testid=receipt-problem]")) !== null;
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(m[1]);
  await page.screenshot({ path: join(shots, "receipt-witnessed-anchored.png"), fullPage: true });
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
