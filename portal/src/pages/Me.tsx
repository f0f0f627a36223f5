// A member's own page: this device's key (made here, non-extractable, in IndexedDB), and either
// the membership it belongs to or the application to make with it.
import { useEffect, useState } from "preact/hooks";
import { Receipt } from "../components/Receipt";
import { submit, type CheckedReceipt } from "../entries";
import { formatNumber, t } from "../i18n";
import { b64, fingerprint, makeDeviceKey } from "../keys";
import type { MessageKey } from "../messages";
import { call, subscribe } from "../rpc";
import { session, type Session } from "../session";

interface Bylaws {
  classes: Record<string, unknown>;
}

interface MemberView {
  record: { id: string; class: string; status: string; roles: string[] };
}

export function Me() {
  const [s, setS] = useState<Session>();
  const [print, setPrint] = useState<string>();
  const [classes, setClasses] = useState<string[]>([]);
  const [chosen, setChosen] = useState("");
  const [member, setMember] = useState<MemberView>();
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);

  const refresh = async () => {
    const now = await session();
    setS(now);
    if (now.device) setPrint(await fingerprint(now.device.publicKey));
    if (now.key) setMember(await call<MemberView>("gov_member", [now.key.member]));
    const bylaws = await call<Bylaws>("gov_bylaws");
    const names = Object.keys(bylaws.classes);
    setClasses(names);
    setChosen((c) => c || names[0] || "");
  };
  useEffect(() => {
    const again = () => refresh().catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
    void again();
    // An admission (or a revocation) arrives in a new checkpoint: the page follows it live.
    return subscribe("ledger_subscribeCheckpoints", () => void again());
  }, []);

  const act = async (f: () => Promise<void>) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await f();
    } catch (e) {
      setProblem(String(e instanceof Error ? e.message : e));
    } finally {
      setBusy(false);
    }
  };

  if (!s) return <p aria-busy="true">{problem ?? t("loading")}</p>;
  return (
    <section aria-labelledby="me-h">
      <h1 id="me-h">{t("me.heading")}</h1>
      {!s.device ? (
        <>
          <p>{t("me.noKey")}</p>
          <button type="button" disabled={busy} onClick={() => act(async () => { await makeDeviceKey(); await refresh(); })}>
            {t("me.makeKey")}
          </button>
        </>
      ) : (
        <>
          <h2>{t("me.key")}</h2>
          <dl class="facts">
            <dt>{t("me.fingerprint")}</dt>
            <dd><code data-testid="fingerprint">{print}</code></dd>
            <dt>{t("overview.vkey")}</dt>
            <dd><code class="wrap">{b64(s.device.publicKey)}</code></dd>
          </dl>
          {s.key && member ? (
            <dl class="facts" data-testid="membership">
              <dt>{t("me.member")}</dt>
              <dd><code data-testid="member-id">{member.record.id}</code></dd>
              <dt>{t("me.class")}</dt>
              <dd>{member.record.class}</dd>
              <dt>{t("me.status")}</dt>
              <dd>{t(`status.${member.record.status}` as MessageKey)}</dd>
              <dt>{t("me.key")}</dt>
              <dd>{t("me.since", { index: formatNumber(s.key.since) })}</dd>
            </dl>
          ) : receipt ? (
            <p data-testid="applied">{t("me.applied")}</p>
          ) : (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void act(async () => {
                  const device = s.device!;
                  setReceipt(await submit(device, s.coop.origin, "member.apply", { class: chosen }, s.vkey));
                });
              }}
            >
              <p>{t("me.unknown")}</p>
              <label for="class">{t("me.class")}</label>
              <select id="class" value={chosen} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}>
                {classes.map((c) => (
                  <option key={c} value={c}>{c}</option>
                ))}
              </select>
              <button type="submit" disabled={busy}>{t("me.apply")}</button>
            </form>
          )}
          {s.key?.revoked !== undefined && <p role="alert">{t("me.revoked", { index: formatNumber(s.key.revoked) })}</p>}
        </>
      )}
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {receipt && <Receipt receipt={receipt} />}
      </div>
    </section>
  );
}
