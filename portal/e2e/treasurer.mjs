// The treasurer's page in headless Chromium, for tests/tests/revenue.rs: the period's preview
// (nothing recorded yet), signed from the page as the distribution with the treasurer's key
// file; the recorded distribution as the page shows it (the node's minor units, read from the
// page) in English and French; then the reconciliation, checked in the page from the revenue
// bundle, with one line paid and one payment recorded as failed from the page. WORK holds url,
// period, currency, treasurer.key, pay (the member to pay) and fail (the member whose payment
// fails). Writes shots/*.png; prints a JSON report.
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
  const open = async (lang) => {
    await page.goto(`${url}/?lang=${lang}#/treasurer`);
    await page.reload();
    await page.waitForSelector("#period");
    await page.fill("#period", read("period"));
    await page.fill("#currency", read("currency"));
    await page.click("form.inline button[type=submit]");
    await page.waitForSelector("[data-testid=line]", { timeout: 15000 });
    for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${lang}: ${m[1]}`);
  };
  const minor = async (id) => Number(await page.getAttribute(`[data-testid=${id}]`, "data-minor"));
  const signIn = async () => {
    await page.setInputFiles("#treasurer-key", join(work, "treasurer.key"));
    await page.waitForSelector("[data-testid=signing-as]");
  };

  // The preview, signed as the distribution.
  await open("en");
  report.previewHeading = await page.innerText("h2 >> nth=1");
  report.previewNet = await minor("net");
  await signIn();
  await page.screenshot({ path: join(work, "shots", "treasurer-preview.png"), fullPage: true });
  await page.click("[data-testid=distribute]");
  await page.waitForSelector("[data-testid=receipt-line]", { timeout: 30000 });
  report.distributeReceipt = await page.innerText("[data-testid=receipt-line]");
  await page.waitForSelector("[data-testid=reconcile]", { timeout: 15000 });

  for (const lang of ["en", "fr"]) {
    await open(lang);
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

  // Reconcile, pay one line, record the other's payment as failed, reconcile again.
  await open("en");
  await signIn();
  await page.click("[data-testid=reconcile]");
  await page.waitForSelector("[data-testid=reconcile-verdict]", { timeout: 30000 });
  report.unpaidStates = await page.$$eval("[data-testid=rec-line]", (rows) => rows.map((r) => r.dataset.state));
  for (const [who, button, reference] of [[read("pay"), "pay", "SEPA-0001"], [read("fail"), "pay-failed", "SEPA-0002"]]) {
    const row = `[data-testid=rec-line][data-member='${who}']`;
    await page.fill(`${row} [data-testid=reference]`, reference);
    await page.click(`${row} [data-testid=${button}]`);
    await page.waitForFunction((r) => document.querySelector(r)?.dataset.state !== "unpaid", row, { timeout: 30000 });
  }
  report.reconciled = await page.$$eval("[data-testid=rec-line]", (rows) =>
    rows.map((r) => ({
      member: r.dataset.member,
      due: Number(r.dataset.due),
      paid: Number(r.dataset.paid),
      difference: Number(r.dataset.difference),
      state: r.dataset.state,
    })));
  const total = await page.$("[data-testid=rec-total]");
  report.recTotal = {
    due: Number(await total.getAttribute("data-due")),
    paid: Number(await total.getAttribute("data-paid")),
    difference: Number(await total.getAttribute("data-difference")),
  };
  report.recCsv = (await page.$("[data-testid=rec-csv]")) !== null;
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`reconcile: ${m[1]}`);
  await page.screenshot({ path: join(work, "shots", "treasurer-reconciled.png"), fullPage: true });
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
