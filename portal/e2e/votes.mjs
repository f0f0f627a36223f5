// Every voting method in headless Chromium, for tests/tests/portal.rs. Four founders bring a
// browser each into their membership with their key file (ana, ben, cy vote; dee's class does
// not). On four open proposals — single choice, approval, ranked choice, yes/no — the page says
// which need their vote, why dee cannot vote, what a vote weighs; ana, ben and cy vote by each
// method; cy gives ana a proxy on the yes/no question and sees how ana voted; after the close
// each proposal's page shows the bars per choice or the instant-runoff rounds. WORK holds url,
// ana.key … dee.key, p1 … p4 (proposal ids). Writes shots/*.png, prints a JSON report.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const read = (f) => readFileSync(join(work, f), "utf8").trim();
const url = read("url");
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { errors: [], missing: [] };
const shot = async (page, name) => {
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${name}: ${m[1]}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};
const [p1, p2, p3, p4] = ["p1", "p2", "p3", "p4"].map(read);

const browser = await launch();
/** A browser whose device key joins `who`'s membership with their key file. */
const member = async (who) => {
  const page = await (await browser.newContext()).newPage();
  watch(page, report.errors);
  await page.goto(`${url}/?lang=en#/me`);
  await page.click("text=Make this device's key");
  await page.waitForSelector("#member-key");
  await page.fill("#device-label", `${who}'s phone`);
  await page.setInputFiles("#member-key", join(work, `${who}.key`));
  await page.waitForSelector("[data-testid=member-id]", { timeout: 30000 });
  return page;
};
/** Opens proposal `id` and waits for the member's panel. */
const open = async (page, id) => {
  await page.goto(`${url}/?lang=en#/proposal/${id}`);
  await page.waitForSelector("[data-testid=eligibility]", { timeout: 15000 });
};
/** After a cast, the page's receipt and "you voted" line. */
const voted = async (page) => {
  await page.waitForSelector("[data-testid=voted]", { timeout: 30000 });
  await page.waitForSelector("[data-testid=my-vote]", { timeout: 15000 });
  return page.innerText("[data-testid=my-vote]");
};

try {
  const [ana, ben, cy, dee] = [await member("ana"), await member("ben"), await member("cy"), await member("dee")];

  // What needs ana's vote, and why dee cannot vote.
  await ana.goto(`${url}/?lang=en#/proposals`);
  await ana.waitForSelector("[data-testid=need-count]", { timeout: 15000 });
  report.needCount = await ana.innerText("[data-testid=need-count]");
  await shot(ana, "proposals-needs-vote");
  await open(dee, p1);
  report.dee = {
    state: await dee.getAttribute("[data-testid=eligibility]", "data-state"),
    text: await dee.innerText("[data-testid=eligibility]"),
    ballot: (await dee.$("[data-choice]")) !== null,
  };
  await shot(dee, "proposal-cannot-vote");

  // Single choice: ana and cy choose Online (1), ben Hall (0).
  await open(ana, p1);
  report.anaEligibility = await ana.innerText("[data-testid=eligibility]");
  report.anaWeight = await ana.innerText("[data-testid=weight]");
  report.anaNeeds = (await ana.$("[data-testid=needs-vote]")) !== null;
  await ana.click("button[data-choice='1']");
  report.anaSingle = await voted(ana);
  report.anaReceipt = await ana.innerText("[data-testid=receipt-line]");
  await shot(ana, "proposal-single-choice");
  await open(ben, p1);
  await ben.click("button[data-choice='0']");
  await voted(ben);
  await open(cy, p1);
  await cy.click("button[data-choice='1']");
  await voted(cy);

  // Approval: ana Trips and Ratings, ben Trips, cy Shifts.
  const approve = async (page, picks) => {
    await open(page, p2);
    for (const i of picks) await page.check(`input[data-choice='${i}']`);
    await page.click("[data-testid=cast]");
    return voted(page);
  };
  report.anaApproval = await approve(ana, [0, 2]);
  await shot(ana, "proposal-approval");
  await approve(ben, [0]);
  await approve(cy, [1]);

  // Ranked: ana Beta > Gamma, ben Gamma > Beta, cy Alpha > Beta (board and eve vote by CLI).
  const rank = async (page, order) => {
    await open(page, p3);
    for (const [place, choice] of order.entries()) await page.selectOption(`select[data-rank='${choice}']`, String(place + 1));
    await page.click("[data-testid=cast]");
    return voted(page);
  };
  report.anaRanked = await rank(ana, [1, 2]);
  await shot(ana, "proposal-ranked");
  await rank(ben, [2, 1]);
  await rank(cy, [0, 1]);

  // Yes/no with a proxy: cy gives ana their proxy, ana votes yes, ben no; cy sees ana's vote.
  await open(cy, p4);
  await cy.fill("#proxy-to", read("ana.member"));
  await cy.click("[data-testid=give-proxy]");
  await cy.waitForSelector("[data-testid=my-proxy]", { timeout: 30000 });
  report.cyProxyBefore = await cy.innerText("[data-testid=my-proxy]");
  await open(ana, p4);
  report.anaHeld = await ana.innerText("[data-testid=proxies-held]");
  await ana.click("button[data-vote=yes]");
  report.anaYes = await voted(ana);
  await open(ben, p4);
  await ben.click("button[data-vote=no]");
  await voted(ben);
  await open(cy, p4);
  await cy.waitForFunction(() => document.querySelector("[data-testid=my-proxy]")?.textContent?.includes("They voted"), null, { timeout: 15000 });
  report.cyProxyAfter = await cy.innerText("[data-testid=my-proxy]");
  await shot(cy, "proposal-proxy");
  await ana.goto(`${url}/?lang=en#/proposals`);
  await ana.waitForSelector("[data-testid=my-standing]");
  // Where she stands is fetched after the list: wait for it.
  await ana.waitForFunction(
    () => [...document.querySelectorAll("[data-testid=my-standing]")].filter((c) => c.textContent.trim() === "voted").length === 4,
    null,
    { timeout: 15000 },
  ).catch(() => {});
  report.anaNeedsAfter = (await ana.$("[data-testid=need-count]")) !== null;
  report.anaStandings = await ana.$$eval("[data-testid=my-standing]", (cells) => cells.map((c) => c.textContent.trim()).filter(Boolean));

  // The results, after the close.
  const result = async (id, name) => {
    await ana.goto(`${url}/?lang=en#/proposal/${id}`);
    await ana.waitForSelector("[data-testid=result-outcome]", { timeout: 90000 });
    await shot(ana, name);
  };
  await result(p1, "result-single-choice");
  report.singleBars = await ana.$$eval("[data-testid=choice-bar]", (bars) => bars.map((b) => b.textContent.trim()));
  await result(p2, "result-approval");
  report.approvalBars = await ana.$$eval("[data-testid=choice-bar]", (bars) => bars.map((b) => b.textContent.trim()));
  await result(p3, "result-ranked");
  report.rounds = await ana.$$eval("[data-testid=irv-cell]", (cells) =>
    cells.map((c) => ({ choice: Number(c.dataset.choice), round: Number(c.dataset.round), text: c.textContent.trim() })),
  );
  await ana.click("[data-testid=recount]");
  await ana.waitForSelector("[data-testid=recount-verdict]", { timeout: 30000 });
  report.rankedRecount = await ana.innerText("[data-testid=recount-verdict]");
  await result(p4, "result-proxy");
  report.yesNoOutcome = await ana.innerText("[data-testid=result-outcome]");
  report.yesNoBallots = await ana.innerText("text=ballot(s) counted");
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
