// A member's own page: this device's key (made here, non-extractable, in IndexedDB), and either
// the membership it belongs to or the application to make with it.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { Receipt } from "../components/Receipt";
import { keyProof, submit, type CheckedReceipt } from "../entries";
import { formatNumber, t } from "../i18n";
import { b64, fingerprint, importKeyFile, makeDeviceKey, unb64 } from "../keys";
import type { MessageKey } from "../messages";
import { call, subscribe } from "../rpc";
import { session, type Session } from "../session";
import { AddDevice, ComeBack, RecoveryCode, ResetAlert, type KeyReset } from "./Recovery";

interface Bylaws {
  classes: Record<string, unknown>;
  keyReset?: { waitMs: number };
}

/** The wait of a key reset under bylaws without a `keyReset` section: 7 days. */
const DEFAULT_RESET_WAIT_MS = 7 * 86_400_000;

interface MemberView {
  record: { id: string; class: string; status: string; roles: string[]; keys: string[]; keyReset?: KeyReset };
}

interface KeyRow {
  key: string;
  print: string;
  since: number;
  revoked?: number;
  label?: string;
}

export function Me() {
  const [s, setS] = useState<Session>();
  const [print, setPrint] = useState<string>();
  const [classes, setClasses] = useState<string[]>([]);
  const [chosen, setChosen] = useState("");
  const [member, setMember] = useState<MemberView>();
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const { busy, problem, setProblem, act } = useAction();
  const [keys, setKeys] = useState<KeyRow[]>([]);
  const [label, setLabel] = useState("");
  const [applied, setApplied] = useState(false);
  const [note, setNote] = useState<string>();
  const [waitMs, setWaitMs] = useState(DEFAULT_RESET_WAIT_MS);

  const refresh = async () => {
    const now = await session();
    setS(now);
    if (now.device) setPrint(await fingerprint(now.device.publicKey));
    if (now.key) {
      const m = await call<MemberView>("gov_member", [now.key.member]);
      setMember(m);
      const rows: KeyRow[] = [];
      for (const key of m.record.keys) {
        const info = await call<{ since: number; revoked?: number; label?: string }>("gov_key", [key]);
        rows.push({ key, print: await fingerprint(unb64(key)), since: info.since, revoked: info.revoked, label: info.label });
      }
      setKeys(rows);
    }
    const bylaws = await call<Bylaws>("gov_bylaws");
    setWaitMs(bylaws.keyReset?.waitMs ?? DEFAULT_RESET_WAIT_MS);
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


  /** After an action of a recovery part: its receipt and note shown, the page refreshed. */
  const done = async (r: CheckedReceipt, said?: string) => {
    setReceipt(r);
    setNote(said);
    await refresh();
  };

  if (!s) return <p aria-busy="true">{problem ?? t("loading")}</p>;
  const current = s.key !== undefined && s.key.revoked === undefined;
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
            <dt>{t("me.publicKey")}</dt>
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
          ) : null}
          {s.key && member ? (
            <>
              <h2>{t("me.keys")}</h2>
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t("me.fingerprint")}</th>
                    <th scope="col">{t("me.label")}</th>
                    <th scope="col">{t("board.entry")}</th>
                    <th scope="col"><span class="sr">{t("me.revoke")}</span></th>
                  </tr>
                </thead>
                <tbody>
                  {keys.map((k) => (
                    <tr key={k.key} data-testid="key-row" data-key={k.key} data-label={k.label ?? ""}>
                      <th scope="row"><code>{k.print}</code></th>
                      <td>
                        {k.key === b64(s.device!.publicKey)
                          ? `${t("me.thisDevice")}${k.label ? ` (${k.label})` : ""}`
                          : (k.label ?? "—")}
                      </td>
                      <td>{formatNumber(k.since)}</td>
                      <td>
                        {k.revoked !== undefined ? (
                          <span data-testid="key-revoked">{t("me.revokedAt", { index: formatNumber(k.revoked) })}</span>
                        ) : k.key !== b64(s.device!.publicKey) && (
                          <button
                            type="button"
                            class="secondary"
                            disabled={busy}
                            data-testid="revoke"
                            onClick={() =>
                              void act(async () => {
                                setReceipt(await submit(s.device!, s.coop.origin, "member.key_revoke", { key: k.key }, s.vkey));
                                await refresh();
                              })
                            }
                          >
                            {t("me.revoke")}
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {current && member.record.keyReset && (
                <ResetAlert s={s} member={member.record.id} reset={member.record.keyReset} done={done} />
              )}
              {current && <AddDevice s={s} member={member.record.id} done={done} />}
              {current && (
                <RecoveryCode
                  s={s}
                  member={member.record.id}
                  recoveryKeys={keys.filter((k) => k.label === "recovery" && k.revoked === undefined)}
                  done={done}
                />
              )}
            </>
          ) : applied ? (
            <p data-testid="applied">{t("me.applied")}</p>
          ) : (
            <>
            <form
              onSubmit={(e) => e.preventDefault()}
            >
              <p>{t("me.addDevice")}</p>
              <label for="device-label">{t("me.label")}</label>
              <input id="device-label" type="text" maxLength={64} value={label} onInput={(e) => setLabel((e.target as HTMLInputElement).value)} />
              <label for="member-key">{t("me.keyFile")}</label>
              <input
                id="member-key"
                type="file"
                accept="application/json,.key,.json"
                onChange={(e) =>
                  void act(async () => {
                    const f = (e.target as HTMLInputElement).files?.[0];
                    if (!f || !s.device) return;
                    const existing = await importKeyFile(await f.text());
                    const info = await call<{ member: string }>("gov_key", [b64(existing.publicKey)]);
                    const proof = await keyProof(s.device.privateKey, s.coop.origin, info.member);
                    const payload: Record<string, unknown> = { key: b64(s.device.publicKey), proof };
                    if (label.trim()) payload.label = label.trim();
                    setReceipt(await submit(existing, s.coop.origin, "member.key_add", payload, s.vkey));
                    await refresh();
                  })
                }
              />
            </form>
            {
            <form
              onSubmit={(e) => {
                e.preventDefault();
                void act(async () => {
                  const device = s.device!;
                  setReceipt(await submit(device, s.coop.origin, "member.apply", { class: chosen }, s.vkey));
                  setApplied(true);
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
            }
            <ComeBack s={s} waitMs={waitMs} done={done} />
            </>
          )}
          {s.key?.revoked !== undefined && <p role="alert">{t("me.revoked", { index: formatNumber(s.key.revoked) })}</p>}
        </>
      )}
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {note && <p data-testid="note">{note}</p>}
        {receipt && <Receipt receipt={receipt} />}
      </div>
    </section>
  );
}
