// The treasurer's page in headless Chromium, for tests/tests/revenue.rs: a period's
// distribution as the page shows it (the node's minor units, read from the page) in English
// and French. WORK holds url, period and currency; writes shots/*.png; prints a JSON report.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const read = (f) => readFileSync(join(work, f), "utf8").trim();
const url = read("url");
mkdirSync(join(work, "shots"), { recursive: true });
const report = { errors: [], missing: [] };
const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  watch(page, report.errors);
  for (const lang of ["en", "fr"]) {
    await page.goto(`${url}/?lang=${lang}#/treasurer`);
    await page.reload();
    await page.waitForSelector("#period");
    await page.fill("#period", read("period"));
    await page.fill("#currency", read("currency"));
    await page.click("form.inline button[type=submit]");
    await page.waitForSelector("[data-testid=line]", { timeout: 15000 });
    for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${lang}: ${m[1]}`);
    const minor = async (id) => Number(await page.getAttribute(`[data-testid=${id}]`, "data-minor"));
    report[lang] = {
      heading: await page.innerText("h2 >> nth=1"),
      net: await minor("net"),
      reserve: await minor("reserve"),
      community: await minor("community"),
      pool: await minor("pool"),
      unshared: await minor("unshared"),
      lines: await page.$$eval("[data-testid=line]", (rows) =>
        rows.map((r) => ({ member: r.dataset.member, amount: Number(r.dataset.minor), text: r.innerText }))),
      netText: await page.innerText("[data-testid=net]"),
      csv: (await page.$("[data-testid=csv]")) !== null,
    };
    await page.screenshot({ path: join(work, "shots", `treasurer-${lang}.png`), fullPage: true });
  }
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
