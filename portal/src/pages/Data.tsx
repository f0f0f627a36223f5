// A member's own data: the personal data the co-op holds for them (read with a request signed
// here, valid once for 30 seconds; updated as a new profile whose values only the node keeps,
// encrypted, while the ledger gets salted commitments; erased for good), and their revenue
// statements — one per distribution, each checked here before it is offered for download.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { Receipt } from "../components/Receipt";
import { checkReceipt, signEntry, type CheckedReceipt, type SubmitResult } from "../entries";
import { formatNumber, t } from "../i18n";
import { b64, concat, type DeviceKey } from "../keys";
import { formatMoney } from "../money";
import { call, RpcError } from "../rpc";
import { session, type Session } from "../session";
import { run, type Answer } from "../verifier";

const enc = new TextEncoder();
const IDENT = /^[a-z0-9_-]{1,64}$/;


/** Reads the member's personal data with a request signed by this device: `"coopledger/v2/
 * personal-read\0" ‖ origin ‖ 0x00 ‖ member ‖ 0x00 ‖ ts (u64 BE) ‖ nonce (16)`. */
async function readData(device: DeviceKey, origin: string, member: string): Promise<Record<string, string> | undefined> {
  const ts = Date.now();
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const tsBytes = new Uint8Array(8);
  new DataView(tsBytes.buffer).setBigUint64(0, BigInt(ts));
  const msg = concat(enc.encode("coopledger/v2/personal-read\0"), enc.encode(origin), new Uint8Array([0]), enc.encode(member), new Uint8Array([0]), tsBytes, nonce);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, device.privateKey, msg));
  try {
    return await call<Record<string, string>>("personal_read", [member, ts, b64(nonce), b64(device.publicKey), b64(sig)]);
  } catch (e) {
    if (e instanceof RpcError && e.code === 2001) return undefined;
    throw e;
  }
}

/** Submits a new profile: each value with a fresh 32-byte salt; the entry carries only
 * base64 SHA-256(salt ‖ value). */
async function saveData(s: Session, member: string, values: Record<string, string>): Promise<CheckedReceipt> {
  const attributes: Record<string, { value: string; salt: string }> = {};
  const commitments: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(salt, enc.encode(value))));
    attributes[name] = { value, salt: b64(salt) };
    commitments[name] = b64(digest);
  }
  const envelope = await signEntry(s.device!, s.coop.origin, "member.profile", { member, attributes: commitments });
  const result = await call<SubmitResult>("personal_submit", [envelope, attributes]);
  return { result, signers: await checkReceipt(envelope, result, s.vkey), vkey: s.vkey };
}

interface Distribution {
  lines: { member: string; amount: number }[];
}

interface Settlement {
  payments: Record<string, { amount: number; status: string; index: number }>;
}

interface StatementRow {
  period: string;
  currency: string;
  amount: number;
  paid?: { status: string; index: number };
  bundle: unknown;
}

function Personal({ s, member }: { s: Session; member: string }) {
  const [data, setData] = useState<Record<string, string> | null>();
  const [rows, setRows] = useState<[string, string][]>([]);
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [note, setNote] = useState<string>();
  const [confirm, setConfirm] = useState("");
  const { busy, problem, act } = useAction();
  const show = () =>
    act(async () => {
      const d = await readData(s.device!, s.coop.origin, member);
      setData(d ?? null);
      setRows(Object.entries(d ?? { name: "" }));
    });
  const save = () =>
    act(async () => {
      const values: Record<string, string> = {};
      for (const [k, v] of rows) {
        const name = k.trim();
        if (!name && !v) continue;
        if (!IDENT.test(name)) throw new Error(t("data.badName", { name }));
        values[name] = v;
      }
      setReceipt(await saveData(s, member, values));
      setNote(t("data.saved"));
      const d = await readData(s.device!, s.coop.origin, member);
      setData(d ?? null);
    });
  const erase = () =>
    act(async () => {
      const envelope = await signEntry(s.device!, s.coop.origin, "member.erase", { member });
      const r = await call<{ receipt: SubmitResult; destroyed: boolean }>("personal_erase", [envelope]);
      setReceipt({ result: r.receipt, signers: await checkReceipt(envelope, r.receipt, s.vkey), vkey: s.vkey });
      setNote(r.destroyed ? t("data.erased") : t("data.erasing"));
      setData(null);
      setRows([]);
      setConfirm("");
    });
  return (
    <section aria-labelledby="personal-h">
      <h2 id="personal-h">{t("data.personal")}</h2>
      <p>{t("data.intro")}</p>
      <button type="button" disabled={busy} data-testid="show-data" onClick={() => void show()}>{t("data.show")}</button>
      {data === null && <p data-testid="no-data">{t("data.none")}</p>}
      {data !== undefined && (
        <form onSubmit={(e) => { e.preventDefault(); void save(); }}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("data.name")}</th>
                <th scope="col">{t("data.value")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(([k, v], i) => (
                <tr key={i} data-testid="data-row">
                  <td>
                    <input aria-label={t("data.name")} data-field="name" value={k} onInput={(e) => setRows(rows.map((r, j) => (j === i ? [(e.target as HTMLInputElement).value, r[1]] : r)))} />
                  </td>
                  <td>
                    <input aria-label={t("data.value")} data-field="value" value={v} onInput={(e) => setRows(rows.map((r, j) => (j === i ? [r[0], (e.target as HTMLInputElement).value] : r)))} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="actions">
            <button type="button" class="secondary" onClick={() => setRows([...rows, ["", ""]])} data-testid="add-row">{t("data.add")}</button>
            <button type="submit" disabled={busy} data-testid="save-data">{t("data.save")}</button>
          </p>
          <p class="hint">{t("data.commitments")}</p>
        </form>
      )}
      <h3>{t("data.eraseHeading")}</h3>
      <p>{t("data.eraseIntro")}</p>
      <label for="erase-confirm">{t("data.eraseConfirm")}</label>
      <input id="erase-confirm" type="text" autocomplete="off" value={confirm} onInput={(e) => setConfirm((e.target as HTMLInputElement).value)} />
      <button type="button" class="secondary" disabled={busy || confirm.trim() !== member} data-testid="erase" onClick={() => void erase()}>
        {t("data.erase")}
      </button>
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {note && <p data-testid="data-note">{note}</p>}
        {receipt && <Receipt receipt={receipt} />}
      </div>
    </section>
  );
}

function Statements({ s, member }: { s: Session; member: string }) {
  const [rows, setRows] = useState<StatementRow[]>();
  const [checked, setChecked] = useState<Record<string, { answer: Answer; url: string }>>({});
  const { busy, problem, act } = useAction();
  useEffect(() => {
    void act(async () => {
      const stmt = await call<{ bundles: { period: string; currency: string }[] }>("revenue_statement", [member]);
      const out: StatementRow[] = [];
      for (const b of stmt.bundles) {
        const [d, st] = await Promise.all([
          call<Distribution>("revenue_distribution", [b.period, b.currency]),
          call<Settlement>("revenue_settlement", [b.period, b.currency]),
        ]);
        out.push({
          period: b.period,
          currency: b.currency,
          amount: d.lines.find((l) => l.member === member)?.amount ?? 0,
          paid: st.payments[member],
          bundle: b,
        });
      }
      setRows(out);
    });
  }, [member]);
  const check = (r: StatementRow) =>
    act(async () => {
      const text = JSON.stringify(r.bundle, null, 2);
      const answer = await run({ op: "bundle", text, vkey: s.vkey });
      const url = URL.createObjectURL(new Blob([text + "\n"], { type: "application/json" }));
      setChecked({ ...checked, [`${r.period}/${r.currency}`]: { answer, url } });
    });
  return (
    <section aria-labelledby="statements-h">
      <h2 id="statements-h">{t("data.statements")}</h2>
      {rows?.length === 0 && <p data-testid="no-statements">{t("data.noStatements")}</p>}
      {rows && rows.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("data.period")}</th>
              <th scope="col" class="num">{t("treasurer.amount")}</th>
              <th scope="col">{t("data.payment")}</th>
              <th scope="col"><span class="sr">{t("data.check")}</span></th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => {
              const c = checked[`${r.period}/${r.currency}`];
              return (
                <tr key={`${r.period}/${r.currency}`} data-testid="statement">
                  <th scope="row">{r.period} ({r.currency})</th>
                  <td class="num" data-testid="statement-amount">{formatMoney(r.amount, r.currency)}</td>
                  <td data-testid="statement-paid">
                    {r.paid ? t(r.paid.status === "paid" ? "data.paid" : "data.failed", { index: formatNumber(r.paid.index) }) : t("data.due")}
                  </td>
                  <td>
                    {c ? (
                      <span class={`verdict-inline ${c.answer.valid ? "valid" : "invalid"}`} data-testid="statement-verdict">
                        {c.answer.valid ? t("verify.valid") : t("verify.invalid")}{" "}
                        {c.answer.valid && (
                          <a href={c.url} download={`statement-${member}-${r.period}-${r.currency}.json`} data-testid="statement-download">
                            {t("data.download")}
                          </a>
                        )}
                        {!c.answer.valid && (c.answer.cause ?? c.answer.error)}
                      </span>
                    ) : (
                      <button type="button" class="secondary" disabled={busy} data-testid="check-statement" onClick={() => void check(r)}>
                        {t("data.check")}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </section>
  );
}

export function Data() {
  const [s, setS] = useState<Session>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    session().then(setS).catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
  }, []);
  if (!s) return <p aria-busy="true">{problem ?? t("loading")}</p>;
  const member = s.key && s.device && s.key.revoked === undefined ? s.key.member : undefined;
  return (
    <section aria-labelledby="data-h">
      <h1 id="data-h">{t("data.heading")}</h1>
      {member ? (
        <>
          <Personal s={s} member={member} />
          <Statements s={s} member={member} />
        </>
      ) : (
        <p>{t("vote.notMember")}</p>
      )}
    </section>
  );
}
