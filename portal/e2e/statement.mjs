// A member's own data page in headless Chromium, for tests/tests/revenue.rs: a driver brings a
// browser into their membership with their key file; their revenue statement for the period
// shows their line and that it was paid, and checks VALID in the page before it is offered for
// download; they read their personal data (none yet), record two items, read them back, change
// one, and erase it all for good. WORK holds url, member.key and member.id. Writes shots/*.png, prints a
// JSON report.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const url = readFileSync(join(work, "url"), "utf8").trim();
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { errors: [], missing: [] };
const shot = async (page, name) => {
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${name}: ${m[1]}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};
const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  watch(page, report.errors);
  await page.goto(`${url}/?lang=en#/me`);
  await page.click("text=Make this device's key");
  await page.waitForSelector("#member-key");
  await page.setInputFiles("#member-key", join(work, "member.key"));
  await page.waitForSelector("[data-testid=member-id]", { timeout: 30000 });

  await page.goto(`${url}/?lang=en#/data`);
  await page.waitForSelector("[data-testid=statement]", { timeout: 30000 });
  report.statementAmount = await page.innerText("[data-testid=statement-amount]");
  report.statementPaid = await page.innerText("[data-testid=statement-paid]");
  await page.click("[data-testid=check-statement]");
  await page.waitForSelector("[data-testid=statement-verdict]", { timeout: 30000 });
  report.statementVerdict = await page.innerText("[data-testid=statement-verdict]");
  report.download = (await page.$("[data-testid=statement-download]")) !== null;

  await page.click("[data-testid=show-data]");
  await page.waitForSelector("[data-testid=no-data]", { timeout: 15000 });
  report.before = await page.innerText("[data-testid=no-data]");
  const rows = async () =>
    page.$$eval("[data-testid=data-row]", (l) =>
      l.map((r) => [r.querySelector("[data-field=name]").value, r.querySelector("[data-field=value]").value]));
  await page.fill("[data-testid=data-row] >> nth=0 >> [data-field=value]", "Ada Lovelace");
  await page.click("[data-testid=add-row]");
  await page.fill("[data-testid=data-row] >> nth=1 >> [data-field=name]", "city");
  await page.fill("[data-testid=data-row] >> nth=1 >> [data-field=value]", "Montréal");
  await page.click("[data-testid=save-data]");
  await page.waitForSelector("[data-testid=data-note]", { timeout: 30000 });
  report.saved = await page.innerText("[data-testid=data-note]");
  report.saveReceipt = await page.innerText("[data-testid=receipt-line]");
  await page.reload();
  await page.click("[data-testid=show-data]");
  await page.waitForSelector("[data-testid=data-row]", { timeout: 15000 });
  report.readBack = await rows();
  await shot(page, "data");
  // Read back in name order: city first.
  await page.fill("[data-testid=data-row] >> nth=0 >> [data-field=value]", "Québec");
  await page.click("[data-testid=save-data]");
  await page.waitForFunction(() => document.querySelector("[data-testid=data-note]")?.textContent?.startsWith("Saved"), null, { timeout: 30000 });
  await page.reload();
  await page.click("[data-testid=show-data]");
  await page.waitForSelector("[data-testid=data-row]", { timeout: 15000 });
  report.changed = await rows();
  // A member id that is not theirs does not arm the button.
  await page.fill("#erase-confirm", "m-0000000000000000");
  report.eraseArmedByOther = await page.isEnabled("[data-testid=erase]");
  await page.fill("#erase-confirm", readFileSync(join(work, "member.id"), "utf8").trim());
  await page.click("[data-testid=erase]");
  await page.waitForFunction(() => document.querySelector("[data-testid=data-note]")?.textContent?.startsWith("Erased"), null, { timeout: 30000 });
  report.erased = await page.innerText("[data-testid=data-note]");
  await shot(page, "data-erased");
  await page.reload();
  await page.click("[data-testid=show-data]");
  await page.waitForSelector("[data-testid=no-data]", { timeout: 15000 });
  report.after = await page.innerText("[data-testid=no-data]");
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
