// Coming back after a lost device, in headless Chromium, for tests/tests/portal.rs:
// 1. a founder's phone (added with their key file) makes a recovery code; a new browser
//    recovers the membership with that code and revokes the lost phone's key in one click;
//    a mistyped code is refused;
// 2. a third browser, knowing only the member id, makes a reset request; the board asks for the
//    reset on its page; the member's current device sees the alert and vetoes it; the third
//    browser finds no reset to complete;
// 3. the board asks again; nobody vetoes; the third browser completes the reset once the
//    bylaws' wait has passed (a try before is refused) and is the member; the device that held
//    the membership sees its key revoked.
// WORK holds url, board.key and founder.key. Writes shots/*.png and prints a JSON report.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, watch } from "./browser.mjs";

const work = process.argv[2];
const read = (f) => readFileSync(join(work, f), "utf8").trim();
// By name, not by IP address: WebAuthn (the passkey) needs a domain; localhost is one.
const url = read("url").replace("127.0.0.1", "localhost");
const shots = join(work, "shots");
mkdirSync(shots, { recursive: true });
const report = { errors: [], missing: [] };
const shot = async (page, name) => {
  for (const m of (await page.innerText("body")).matchAll(/⟦([^⟧]+)⟧/g)) report.missing.push(`${name}: ${m[1]}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};

const browser = await launch();
const device = async (authenticator = false) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page, report.errors);
  if (authenticator) {
    // A platform authenticator with passkeys and the PRF extension, as Chromium's WebAuthn
    // testing API provides.
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, hasPrf: true },
    });
  }
  await page.goto(`${url}/?lang=en#/me`);
  await page.click("text=Make this device's key");
  await page.waitForSelector("#recovery-input");
  return page;
};
try {
  // 1. The phone joins the founder's membership, then makes a recovery code.
  const phone = await device(true);
  await phone.fill("#device-label", "phone");
  await phone.setInputFiles("#member-key", join(work, "founder.key"));
  await phone.waitForSelector("[data-testid=make-recovery]", { timeout: 30000 });
  report.member = await phone.innerText("[data-testid=member-id]");
  await phone.check("[data-testid=with-passkey]");
  await phone.click("[data-testid=make-recovery]");
  await phone.waitForSelector("[data-testid=recovery-code], [data-testid=problem]", { timeout: 30000 });
  const madeProblem = await phone.$("[data-testid=problem]");
  if (madeProblem) throw new Error(`making the recovery code: ${await madeProblem.innerText()}`);
  report.passkeyMade = await phone.innerText("[data-testid=passkey-made]");
  report.code = await phone.innerText("[data-testid=recovery-code]");
  report.codeReceipt = await phone.innerText("[data-testid=receipt-line]");
  await phone.waitForSelector("[data-testid=recovery-have]", { timeout: 15000 });
  await shot(phone, "me-recovery-code");

  // The phone's browser loses its device key (its passkey stays with the authenticator, as a
  // synced passkey would on a new device): the passkey brings the membership back.
  await phone.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("coopledger", 1);
        open.onsuccess = () => {
          const tx = open.result.transaction("keys", "readwrite");
          tx.objectStore("keys").delete("device");
          tx.oncomplete = () => resolve(null);
          tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
      }),
  );
  await phone.reload();
  await phone.click("text=Make this device's key");
  await phone.waitForSelector("[data-testid=recover-passkey]");
  await phone.fill("#recover-label", "phone again");
  await phone.click("[data-testid=recover-passkey]");
  await phone.waitForSelector("[data-testid=member-id]", { timeout: 30000 });
  report.passkeyMember = await phone.innerText("[data-testid=member-id]");
  report.passkeyNote = await phone.innerText("[data-testid=note]");
  await shot(phone, "me-passkey-recovered");

  // A mistyped code (one character changed) finds no kit; a malformed one is named.
  const stranger = await device();
  const typo = report.code.replace(/^./, (c) => (c === "A" ? "B" : "A"));
  await stranger.fill("#recovery-input", typo);
  await stranger.click("[data-testid=recover]");
  report.typo = await (await stranger.waitForSelector("[data-testid=problem]", { timeout: 30000 })).innerText();
  await stranger.fill("#recovery-input", "not a code");
  await stranger.click("[data-testid=recover]");
  await stranger.waitForFunction(() => document.querySelector("[data-testid=problem]")?.textContent?.includes("24 letters"));
  report.malformed = await stranger.innerText("[data-testid=problem]");

  // The phone is lost: a new browser comes back with the code (typed in lower case, no dashes).
  const laptop = await device();
  await laptop.fill("#recovery-input", report.code.toLowerCase().replace(/-/g, " "));
  await laptop.fill("#recover-label", "laptop");
  await laptop.click("[data-testid=recover]");
  await laptop.waitForSelector("[data-testid=member-id]", { timeout: 30000 });
  report.recoveredMember = await laptop.innerText("[data-testid=member-id]");
  report.recoveredNote = await laptop.innerText("[data-testid=note]");
  report.recoverReceipt = await laptop.innerText("[data-testid=receipt-line]");
  await laptop.click("[data-testid=key-row][data-label=phone] [data-testid=revoke]");
  await laptop.waitForSelector("[data-testid=key-row][data-label=phone] [data-testid=key-revoked]", { timeout: 30000 });
  await shot(laptop, "me-recovered");

  // A watch joins from the laptop: it makes a request, the laptop signs it in; a request for
  // another member is refused there.
  const watchPage = await device();
  await watchPage.fill("#reset-member", report.member);
  await watchPage.fill("#recover-label", "watch");
  await watchPage.click("[data-testid=make-request]");
  const watchRequest = await (await watchPage.waitForSelector("[data-testid=reset-request]")).inputValue();
  await laptop.fill("#add-device-request", JSON.stringify({ ...JSON.parse(watchRequest), member: "m-0000000000000000" }));
  await laptop.click("[data-testid=add-device]");
  report.notMine = await (await laptop.waitForSelector("[data-testid=problem]", { timeout: 15000 })).innerText();
  await laptop.fill("#add-device-request", watchRequest);
  await laptop.click("[data-testid=add-device]");
  await laptop.waitForFunction(() => document.querySelector("[data-testid=note]")?.textContent?.startsWith("Added"), null, { timeout: 30000 });
  report.addedNote = await laptop.innerText("[data-testid=note]");
  await watchPage.reload();
  await watchPage.waitForSelector("[data-testid=member-id]", { timeout: 15000 });
  report.watchMember = await watchPage.innerText("[data-testid=member-id]");
  await shot(laptop, "me-device-added");

  // 2. Everything lost: a third browser asks the board, and the laptop vetoes.
  const fresh = await device();
  await fresh.fill("#reset-member", report.member);
  await fresh.fill("#recover-label", "tablet");
  await fresh.click("[data-testid=make-request]");
  const request = await (await fresh.waitForSelector("[data-testid=reset-request]")).inputValue();
  report.request = JSON.parse(request);
  await shot(fresh, "me-reset-request");

  const board = await (await browser.newContext()).newPage();
  watch(board, report.errors);
  await board.goto(`${url}/?lang=en#/board`);
  await board.setInputFiles("#board-key", join(work, "board.key"));
  await board.waitForSelector("[data-testid=signing-as]");
  const ask = async () => {
    await board.fill("#reset-input", request);
    await board.click("[data-testid=ask-reset]");
    await board.waitForSelector("[data-testid=reset-asked]", { timeout: 30000 });
    return board.innerText("[data-testid=reset-asked]");
  };
  report.asked = await ask();
  report.askReceipt = await board.innerText("[data-testid=receipt-line]");
  await shot(board, "board-reset");

  await laptop.reload();
  await laptop.waitForSelector("[data-testid=reset-alert]", { timeout: 15000 });
  report.alert = await laptop.innerText("[data-testid=reset-alert] p");
  await shot(laptop, "me-reset-alert");
  await laptop.click("[data-testid=veto]");
  await laptop.waitForSelector("[data-testid=note]", { timeout: 30000 });
  report.vetoNote = await laptop.innerText("[data-testid=note]");
  // The alert goes once the page has the state after the veto.
  report.alertAfterVeto = await laptop
    .waitForSelector("[data-testid=reset-alert]", { state: "detached", timeout: 15000 })
    .then(() => false, () => true);
  await fresh.click("[data-testid=check-reset]");
  await fresh.waitForTimeout(500);
  report.pendingAfterVeto = (await fresh.$("[data-testid=reset-pending]")) !== null;

  // 3. Asked again, not vetoed: completed once the wait is over.
  await board.reload();
  await board.setInputFiles("#board-key", join(work, "board.key"));
  await board.waitForSelector("[data-testid=signing-as]");
  report.askedAgain = await ask();
  await fresh.click("[data-testid=check-reset]");
  await fresh.waitForSelector("[data-testid=reset-pending]", { timeout: 15000 });
  await shot(fresh, "me-reset-pending");
  await fresh.click("[data-testid=complete-reset]");
  await fresh.waitForSelector("[data-testid=problem]", { timeout: 30000 });
  report.early = await fresh.innerText("[data-testid=problem]");
  for (let attempt = 0; attempt < 40; attempt++) {
    await fresh.waitForTimeout(500);
    await fresh.click("[data-testid=complete-reset]");
    const done = await fresh
      .waitForSelector("[data-testid=member-id], [data-testid=problem]", { timeout: 30000 })
      .then((e) => e.getAttribute("data-testid"));
    if (done === "member-id") break;
  }
  report.resetMember = await fresh.innerText("[data-testid=member-id]");
  report.resetNote = await fresh.innerText("[data-testid=note]");
  await fresh.waitForFunction(() => document.querySelectorAll("[data-testid=key-revoked]").length >= 1, null, { timeout: 15000 });
  report.keysAfterReset = {
    rows: (await fresh.$$("[data-testid=key-row]")).length,
    revoked: (await fresh.$$("[data-testid=key-revoked]")).length,
  };
  await shot(fresh, "me-reset-done");
  await laptop.reload();
  await laptop.waitForSelector("text=This key was revoked", { timeout: 15000 });
  report.laptopRevoked = true;
} catch (e) {
  report.errors.push(`driver: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
