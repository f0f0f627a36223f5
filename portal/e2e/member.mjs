// A person's way in, in headless Chromium, for tests/tests/portal.rs: they make this device's
// key and apply; a board member admits them from the board page with a key file; once a
// proposal is open they vote; each step's receipt is checked in the page; after the close the
// result shows. Then consent: they consent to a notice in the page, a data use under it is
// accepted, they withdraw in one click, the next data use is refused, and their exported
// consent bundle verifies in the page. WORK holds url, board.key, coop (the CLI binary),
// duration and notice.json. Last, a founder (founder.key) adds a new device and revokes their
// old key from it. The script writes shots/*.png and prints a JSON report.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const read = (f) => readFileSync(join(work, f), "utf8").trim();
const url = read("url");
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { errors: [], missing: [] };
const coop = (...args) => execFileSync(read("coop"), ["--rpc", url, ...args], { stdio: "pipe" }).toString();
const shot = async (page, name) => {
  // Every page on the way is also checked for a message missing from the catalog.
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${name}: ${m[1]}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};

const browser = await launch();
try {
  // One browser profile is the applicant's device, another the board member's.
  const person = await (await browser.newContext()).newPage();
  const board = await (await browser.newContext()).newPage();
  watch(person, report.errors);
  watch(board, report.errors);

  await person.goto(`${url}/?lang=en#/me`);
  await person.click("text=Make this device's key");
  await person.waitForSelector("[data-testid=fingerprint]");
  report.fingerprint = await person.innerText("[data-testid=fingerprint]");
  await person.click("form button[type=submit]");
  await person.waitForSelector("[data-testid=receipt-line]", { timeout: 30000 });
  report.applyReceipt = await person.innerText("[data-testid=receipt-line]");
  await shot(person, "me-applied");

  await board.goto(`${url}/?lang=en#/board`);
  await board.waitForSelector("[data-testid=application]");
  report.pendingBefore = (await board.$$("[data-testid=application]")).length;
  await board.setInputFiles("#board-key", join(work, "board.key"));
  await board.waitForSelector("[data-testid=signing-as]");
  report.signingAs = await board.innerText("[data-testid=signing-as]");
  await board.check("[data-testid=application] input[type=checkbox]");
  await shot(board, "board-pending");
  await board.click("text=Admit selected");
  await board.waitForSelector("[data-testid=decided]", { timeout: 30000 });
  report.admitReceipt = await board.innerText("[data-testid=receipt-line]");
  await board.waitForSelector("[data-testid=no-pending]");
  await shot(board, "board-admitted");

  await person.goto(`${url}/?lang=en#/me`);
  await person.waitForSelector("[data-testid=member-id]");
  report.member = await person.innerText("[data-testid=member-id]");
  await shot(person, "me-member");

  // The board puts a question to the members, from its page.
  await board.selectOption("#p-kind", "ordinary");
  await board.fill("#p-title", "Publish the Q1 data-sales report");
  await board.fill("#p-minutes", String(Number(read("duration")) / 60));
  await shot(board, "board-propose");
  await board.click("[data-testid=propose]");
  await board.waitForFunction(() => document.querySelector("[data-testid=board-note]")?.textContent?.startsWith("Proposed"), null, { timeout: 30000 });
  report.proposedNote = await board.innerText("[data-testid=board-note]");
  report.proposeReceipt = await board.innerText("[data-testid=receipt-line]");
  await person.goto(`${url}/?lang=en#/proposals`);
  await person.waitForSelector("button[data-vote=yes]", { timeout: 15000 });
  report.proposal = (await person.getAttribute("a:text('Publish the Q1 data-sales report')", "href")).replace("#/proposal/", "");
  await person.click("button[data-vote=yes]");
  await person.waitForSelector("[data-testid=voted]", { timeout: 30000 });
  report.voteReceipt = await person.innerText("[data-testid=receipt-line]");
  await shot(person, "proposals-voted");

  // After the close the clerk records the tally; the page reloads on each new checkpoint.
  await person.waitForFunction(
    () => document.querySelector("[data-testid=outcome]")?.textContent === "adopted",
    null,
    { timeout: 60000, polling: 250 },
  );
  report.outcome = await person.innerText("[data-testid=outcome]");
  await shot(person, "proposals-result");
  // The proposal's page: bars against the quorum and threshold lines, and a recount here.
  await person.click(`a[href="#/proposal/${report.proposal}"]`);
  await person.waitForSelector("[data-testid=bar-yes]");
  report.resultOutcome = await person.innerText("[data-testid=result-outcome]");
  report.participationBar = await person.innerText("[data-testid=bar-participation]");
  report.yesBar = await person.innerText("[data-testid=bar-yes]");
  await person.click("[data-testid=recount]");
  await person.waitForSelector("[data-testid=recount-verdict]", { timeout: 30000 });
  report.recount = await person.innerText("[data-testid=recount-verdict]");
  await shot(person, "proposal-recounted");

  // A special resolution: a secret ballot, cast from the browser through the ballot box.
  const secret = execFileSync(read("coop"), [
    "proposal", "create", "--rpc", url, "--key", join(work, "board.key"), "--kind", "special",
    "--title", "Share anonymised shift data with the university", "--duration", read("duration"),
  ]).toString();
  report.secretProposal = secret.match(/proposal: ([0-9a-f]{64})/)?.[1] ?? secret;
  await person.goto(`${url}/?lang=en#/proposals`);
  await person.waitForSelector("button[data-vote=yes]", { timeout: 15000 });
  // The clerk publishes the class keys moments after the proposal; a vote before that is refused.
  for (let attempt = 0; ; attempt++) {
    await person.click("button[data-vote=yes]");
    const done = await person
      .waitForSelector("[data-testid=secret-voted], [data-testid=problem]", { timeout: 30000 })
      .then((e) => e.getAttribute("data-testid"));
    if (done === "secret-voted" || attempt >= 10) break;
    await person.waitForTimeout(300);
  }
  await person.waitForSelector("[data-testid=secret-voted]", { timeout: 1000 });
  report.ballotReceipt = await person.getAttribute("[data-testid=ballot-receipt]", "data-receipt");
  await shot(person, "secret-voted");
  await person.waitForFunction(
    () => document.querySelector("[data-testid=outcome]")?.textContent === "adopted",
    null,
    { timeout: 60000, polling: 250 },
  );
  report.secretOutcome = await person.innerText("[data-testid=outcome]");

  // Consent. The board registers the parties and publishes a notice, from its page.
  const boardKey = join(work, "board.key");
  await board.goto(`${url}/?lang=en#/board`);
  await board.reload();
  await board.setInputFiles("#board-key", boardKey);
  await board.waitForSelector("[data-testid=signing-as]");
  for (const [id, kind, name] of [["drivers_coop", "controller", "Drivers' Co-op"], ["city", "recipient", "City transport office"]]) {
    await board.fill("#party-id", id);
    await board.selectOption("#party-kind", kind);
    await board.fill("#party-name", name);
    await board.fill("#party-jurisdiction", "CA-QC");
    await board.click("[data-testid=register-party]");
    await board.waitForFunction((p) => document.querySelector("[data-testid=board-note]")?.textContent === `Registered: ${p}.`, id, { timeout: 30000 });
  }
  const notice = JSON.parse(read("notice.json"));
  await board.fill("#n-notice", notice.notice);
  await board.fill("#n-version", String(notice.version));
  await board.fill("#n-controller", notice.controller);
  await board.fill("#n-purposes", notice.purposes.join("\n"));
  await board.fill("#n-dataCategories", notice.dataCategories.join("\n"));
  await board.fill("#n-operations", notice.operations.join("\n"));
  await board.fill("#n-recipients", notice.recipients.join("\n"));
  await board.fill("#n-retentionDays", String(notice.retentionMs / 86400000));
  await board.fill("#n-jurisdiction", notice.jurisdiction);
  await board.fill("#n-lawfulBasis", notice.lawfulBasis);
  await board.fill("#n-language", notice.language);
  await board.fill("#n-text", readFileSync(notice.textFile, "utf8"));
  await board.click("[data-testid=publish-notice]");
  await board.waitForFunction(() => document.querySelector("[data-testid=board-note]")?.textContent?.startsWith("Published"), null, { timeout: 30000 });
  report.publishedNote = await board.innerText("[data-testid=board-note]");
  await shot(board, "board-notice");
  await person.goto(`${url}/?lang=en#/consent`);
  await person.waitForSelector("[data-testid=give]", { timeout: 15000 });
  await person.click("[data-testid=give]");
  await person.waitForSelector("[data-testid=grant]", { timeout: 30000 });
  report.grantStatus = await person.innerText("[data-testid=grant-status]");
  report.grantReceipt = await person.innerText("[data-testid=receipt-line]");
  const grant = await person.getAttribute("[data-testid=grant]", "data-grant");
  const use = () =>
    coop("data-use", "--key", boardKey, "--kind", "sale", "--recipient", "city", "--purpose", "dpv:ServiceProvision",
      "--category", "pd:Location", "--consent", grant);
  report.firstUse = use().trim().split("\n")[0];
  await person.waitForFunction(
    () => document.querySelector("[data-testid=grant-uses]")?.textContent === "1", null, { timeout: 15000, polling: 200 });
  await shot(person, "consent-given");
  await person.click("[data-testid=renew]");
  await person.waitForFunction(() => document.querySelector("[data-testid=consent-note]")?.textContent?.startsWith("Renewed"), null, { timeout: 30000 });
  report.renewNote = await person.innerText("[data-testid=consent-note]");
  report.renewReceipt = await person.innerText("[data-testid=receipt-line]");
  await person.click("[data-testid=withdraw]");
  await person.waitForSelector("[data-testid=consent-note]", { timeout: 30000 });
  report.withdrawNote = await person.innerText("[data-testid=consent-note]");
  await person.waitForFunction(
    () => document.querySelector("[data-testid=grant-status]")?.textContent === "withdrawn", null, { timeout: 15000, polling: 200 });
  await shot(person, "consent-withdrawn");
  try {
    use();
    report.secondUse = "accepted";
  } catch (e) {
    report.secondUse = `refused (exit ${e.status}): ${String(e.stdout)}${String(e.stderr)}`.trim();
  }
  await person.click("[data-testid=export]");
  await person.waitForSelector("[data-testid=export-verdict]", { timeout: 30000 });
  report.exportVerdict = await person.innerText("[data-testid=export-verdict]");
  report.download = (await person.$("[data-testid=download]")) !== null;
  await shot(person, "consent-exported");
  // The grant's history (given, used, withdrawn — the use with what went where) and the notice's
  // text, checked in the page against the digest on the ledger.
  await person.click("[data-testid=grant-history] summary");
  await person.waitForFunction(
    () => document.querySelector("[data-testid=history-event][data-event='data.use']")?.textContent?.includes(" to "),
    null,
    { timeout: 15000 },
  );
  report.history = await person.$$eval("[data-testid=history-event]", (l) => l.map((e) => ({ event: e.dataset.event, text: e.textContent })));
  await person.click("[data-testid=grant-history] [data-testid=notice-text] summary");
  await person.waitForSelector("[data-testid=grant-history] [data-testid=notice-check]", { timeout: 15000 });
  report.noticeBody = await person.innerText("[data-testid=grant-history] [data-testid=notice-body]");
  report.noticeCheck = await person.innerText("[data-testid=grant-history] [data-testid=notice-check]");
  await shot(person, "consent-history");

  // A member's new laptop: a key made there, added with one of their key files (signing once),
  // then the old key revoked in one click from the new device.
  const laptop = await (await browser.newContext()).newPage();
  watch(laptop, report.errors);
  await laptop.goto(`${url}/?lang=en#/me`);
  await laptop.click("text=Make this device's key");
  await laptop.waitForSelector("#member-key");
  await laptop.fill("#device-label", "laptop");
  await laptop.setInputFiles("#member-key", join(work, "founder.key"));
  await laptop.waitForSelector("[data-testid=member-id]", { timeout: 30000 });
  report.laptopMember = await laptop.innerText("[data-testid=member-id]");
  await laptop.waitForFunction(() => document.querySelectorAll("[data-testid=key-row]").length === 2, null, { timeout: 15000 });
  await shot(laptop, "me-two-keys");
  await laptop.click("[data-testid=revoke]");
  await laptop.waitForSelector("[data-testid=key-revoked]", { timeout: 30000 });
  report.keysAfterRevoke = {
    rows: (await laptop.$$("[data-testid=key-row]")).length,
    revoked: (await laptop.$$("[data-testid=key-revoked]")).length,
    revokeButtons: (await laptop.$$("[data-testid=revoke]")).length,
  };
  await shot(laptop, "me-revoked");
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
