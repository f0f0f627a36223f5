// Drives the portal in headless Chromium (Debian's `chromium`, via playwright-core) for
// tests/tests/portal.rs: every page in English and French, the bundle verifier with a valid and
// a tampered file, the vector suite through the browser's verifier, the CSP header, keyboard
// access, the refusal outside a secure context, and a screenshot of each page.
//
// Usage: node e2e/portal.mjs WORK — WORK holds url, vkey, bundle.json, tampered.json and
// requests.json; the script writes answers.json, shots/*.png and prints a JSON report.
import { launch, watch } from "./browser.mjs";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const work = process.argv[2];
const read = (f) => readFileSync(join(work, f), "utf8");
const url = read("url").trim();
const vkey = read("vkey").trim();
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { pages: {}, errors: [], missing: [] };

const browser = await launch([
  // A name that is not localhost, for the insecure-context check.
  "--host-resolver-rules=MAP insecure.test 127.0.0.1",
]);
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  watch(page, report.errors);

  const first = await page.goto(`${url}/?lang=en#/`);
  report.csp = first.headers()["content-security-policy"] ?? null;

  const visit = async (lang, route, ready, name) => {
    await page.goto(`${url}/?lang=${lang}${route}`);
    await page.waitForSelector(ready, { timeout: 15000 });
    const text = await page.innerText("body");
    for (const m of text.matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${lang} ${route}: ${m[1]}`);
    report.pages[name] = { title: await page.title(), h1: await page.innerText("h1") };
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  for (const lang of ["en", "fr"]) {
    await visit(lang, "#/", "[data-testid=size]", `overview-${lang}`);
    await visit(lang, "#/proposals", "#proposals-h", `proposals-${lang}`);
    await visit(lang, "#/verify", "#verify-h", `verify-${lang}`);
    await visit(lang, "#/me", "#me-h", `me-${lang}`);
    await visit(lang, "#/board", "#board-h", `board-${lang}`);
    await visit(lang, "#/consent", "#consent-h", `consent-${lang}`);
    await visit(lang, "#/data", "#data-h", `data-${lang}`);
    await visit(lang, "#/treasurer", "#treasurer-h", `treasurer-page-${lang}`);
  }
  report.pages["overview-en"].size = await (async () => {
    await page.goto(`${url}/?lang=en#/`);
    await page.waitForSelector("[data-testid=size]");
    return page.innerText("[data-testid=size]");
  })();
  report.pages["overview-en"].members = await page.innerText("[data-testid=members]");

  // Keyboard: the first Tab reaches the skip link, Enter moves focus to the page's content.
  await page.keyboard.press("Tab");
  report.firstTab = await page.evaluate(() => document.activeElement?.className ?? "");
  await page.keyboard.press("Enter");
  report.afterSkip = await page.evaluate(() => document.activeElement?.id ?? "");

  // A regulator drops a bundle: VALID with what it proves; one byte changed: INVALID, and why.
  const drop = async (file, name) => {
    await page.goto(`${url}/?lang=en#/verify`);
    await page.waitForSelector("#verify-h");
    await page.setInputFiles("#bundle-file", join(work, file));
    await page.fill("#vkey", vkey);
    await page.click("button[type=submit]");
    await page.waitForSelector(".verdict", { timeout: 30000 });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    const valid = await page.$(".verdict.valid");
    return valid
      ? { valid: true, headline: await page.innerText("[data-testid=headline]") }
      : { valid: false, cause: await page.innerText("[data-testid=cause]") };
  };
  report.valid = await drop("bundle.json", "verify-valid");
  report.tampered = await drop("tampered.json", "verify-invalid");

  // Pinning the co-op's published verifier key: a key that is not the node's makes every page
  // refuse this node; the node's own key pinned, pages work again.
  const pinning = await (await browser.newContext()).newPage();
  await pinning.goto(`${url}/?lang=en#/`);
  await pinning.waitForSelector("#pin-input");
  await pinning.fill("#pin-input", read("other.vkey"));
  await pinning.click("[data-testid=pin]");
  report.pinMismatch = await pinning.innerText("[data-testid=pin-mismatch]");
  await pinning.goto(`${url}/?lang=en#/me`);
  await pinning.waitForSelector("[role=alert], p[aria-busy]", { timeout: 15000 });
  await pinning.waitForFunction(() => document.body.innerText.includes("not the one pinned"), null, { timeout: 15000 });
  report.pinRefused = (await pinning.innerText("main")).trim();
  await pinning.screenshot({ path: join(shots, "pin-refused.png"), fullPage: true });
  await pinning.goto(`${url}/?lang=en#/`);
  await pinning.waitForSelector("[data-testid=unpin]");
  await pinning.click("[data-testid=unpin]");
  await pinning.fill("#pin-input", vkey);
  await pinning.click("[data-testid=pin]");
  report.pinState = await pinning.innerText("[data-testid=pin-state]");
  report.pinMismatchAfter = (await pinning.$("[data-testid=pin-mismatch]")) !== null;
  await pinning.goto(`${url}/?lang=en#/me`);
  await pinning.reload();
  await pinning.waitForSelector("#me-h", { timeout: 15000 });
  report.pinnedMe = await pinning.innerText("#me-h");

  // Every vector through the browser's verifier; the test compares with the native verdicts.
  const requests = JSON.parse(read("requests.json"));
  const started = Date.now();
  const answers = await page.evaluate(async (reqs) => {
    const out = [];
    for (const r of reqs) out.push(await window.coopledgerVerifier.run(r));
    return out;
  }, requests);
  report.vectorMs = Date.now() - started;
  writeFileSync(join(work, "answers.json"), JSON.stringify(answers));

  // Page load: navigation to a rendered overview, cold cache.
  const fresh = await browser.newContext();
  const p2 = await fresh.newPage();
  const t0 = Date.now();
  await p2.goto(`${url}/?lang=en#/`);
  await p2.waitForSelector("[data-testid=size]");
  report.loadMs = Date.now() - t0;
  // Outside a secure context the portal refuses and says why.
  const insecure = url.replace("127.0.0.1", "insecure.test");
  await p2.goto(`${insecure}/?lang=en#/`);
  await p2.waitForSelector(".refusal");
  report.insecure = await p2.innerText(".refusal h1");
  await p2.screenshot({ path: join(shots, "insecure.png") });
  await fresh.close();
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
