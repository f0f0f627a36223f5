// The treasurer's page: a period's books (revenues and expenses) and its distribution — the
// recorded one, or the preview of what `revenue.distribute` must carry — with the reserve, the
// community fund, the pool and a bar per member line; the figures are the node's own, in integer
// minor units, shown as money and exported as CSV.
import { useState } from "preact/hooks";
import { useAction } from "../action";
import { KeyFile, type FileSigner } from "../components/KeyFile";
import { Receipt } from "../components/Receipt";
import { submit, type CheckedReceipt } from "../entries";
import { formatNumber, t } from "../i18n";
import type { MessageKey } from "../messages";
import { formatMoney } from "../money";
import { call, RpcError } from "../rpc";
import { session } from "../session";
import { run } from "../verifier";

/** A verified revenue bundle's reconciliation (`governance::revenue_bundle::reconciliation`,
 * run by the verifier in this page: the figures `coop revenue reconcile` prints). */
interface Reconciliation {
  checkpoint: number;
  due: number;
  paid: number;
  difference: number;
  unclaimed: number;
  lines: { member: string; basis: number; amount: number; paid: number; difference: number; state: string }[];
}

interface Books {
  revenues: { id: string; payer: string; amount: number; purpose: string }[];
  expenses: { id: string; payee: string; amount: number }[];
}

interface Distribution {
  period: string;
  currency: string;
  policyVersion: number;
  gross: number;
  expenseTotal: number;
  net: number;
  reserve: number;
  community: number;
  communityFund?: string;
  pool: number;
  unshared: number;
  lines: { member: string; basis: number; amount: number; belowMinimum: boolean }[];
}

export function Treasurer() {
  const [period, setPeriod] = useState("");
  const [currency, setCurrency] = useState("EUR");
  const [books, setBooks] = useState<Books>();
  const [dist, setDist] = useState<{ d: Distribution; recorded: boolean }>();
  const [signer, setSigner] = useState<FileSigner>();
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [rec, setRec] = useState<{ r: Reconciliation; headline: string }>();
  const [refs, setRefs] = useState<Record<string, string>>({});
  const { busy, problem, act } = useAction();

  const sign = async (type: string, payload: Record<string, unknown>) => {
    const s = await session();
    if (!signer) return;
    setReceipt(await submit(signer, s.coop.origin, type, payload, s.vkey));
  };
  const distribute = (d: Distribution) =>
    act(async () => {
      await sign("revenue.distribute", { period: d.period, currency: d.currency, distribution: d });
      await load();
    });
  const pay = (d: Distribution, member: string, amount: number, status: "paid" | "failed") =>
    act(async () => {
      const reference = (refs[member] ?? "").trim();
      if (!reference) throw new Error(t("treasurer.referenceNeeded"));
      await sign("revenue.payment", { period: d.period, currency: d.currency, member, amount, reference, status });
      await reconcile();
    });
  const reconcile = () =>
    act(async () => {
      const s = await session();
      const bundle = await call<unknown>("revenue_bundle", [period, currency]);
      const a = await run({ op: "bundle", text: JSON.stringify(bundle), vkey: s.vkey });
      if (!a.valid || !a.reconciliation) throw new Error(t("receipt.failed", { cause: a.cause ?? a.error ?? "?" }));
      setRec({ r: a.reconciliation as Reconciliation, headline: a.headline ?? "" });
    });
  const recCsv = (r: Reconciliation) => {
    const rows = ["member,basis,amount,paid,difference,state", ...r.lines.map((l) => `${l.member},${l.basis},${l.amount},${l.paid},${l.difference},${l.state}`)];
    return URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  };

  const load = async () => {
      setDist(undefined);
      setRec(undefined);
      setBooks(await call<Books>("revenue_ledger", [period, currency]));
      try {
        setDist({ d: await call<Distribution>("revenue_distribution", [period, currency]), recorded: true });
      } catch (e) {
        // 2001 NOT_FOUND: nothing recorded yet; show what the log implies.
        if (!(e instanceof RpcError && e.code === 2001)) throw e;
        setDist({ d: await call<Distribution>("revenue_preview", [period, currency]), recorded: false });
      }
    };
  const show = () => act(load);

  const csv = (d: Distribution) => {
    const rows = ["member,basis,amount_minor_units,below_minimum", ...d.lines.map((l) => `${l.member},${l.basis},${l.amount},${l.belowMinimum}`)];
    return URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  };
  const money = (n: number) => formatMoney(n, currency);
  const largest = dist ? Math.max(1, ...dist.d.lines.map((l) => l.amount)) : 1;

  return (
    <section aria-labelledby="treasurer-h">
      <h1 id="treasurer-h">{t("treasurer.heading")}</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void show();
        }}
      >
        <label for="period">{t("treasurer.period")}</label>
        <input id="period" type="text" value={period} placeholder="2026-q3" onInput={(e) => setPeriod((e.target as HTMLInputElement).value)} />
        <label for="currency">{t("treasurer.currency")}</label>
        <input id="currency" type="text" value={currency} maxLength={3} onInput={(e) => setCurrency((e.target as HTMLInputElement).value.toUpperCase())} />
        <button type="submit" disabled={busy || !period}>{t("treasurer.show")}</button>
      </form>
      <KeyFile id="treasurer-key" label="treasurer.keyFile" signer={signer} act={act} onSigner={setSigner} />
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {receipt && <Receipt receipt={receipt} />}
      </div>
      {books && (
        <>
          <h2>{t("treasurer.books")}</h2>
          <table>
            <tbody>
              {books.revenues.map((r) => (
                <tr key={r.id}>
                  <th scope="row">{t("treasurer.revenue", { payer: r.payer })}</th>
                  <td class="num">{money(r.amount)}</td>
                </tr>
              ))}
              {books.expenses.map((x) => (
                <tr key={x.id}>
                  <th scope="row">{t("treasurer.expense", { payee: x.payee })}</th>
                  <td class="num">− {money(x.amount)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {dist && (
        <>
          <h2>{t(dist.recorded ? "treasurer.recorded" : "treasurer.preview")}</h2>
          <dl class="facts" data-testid="totals">
            <dt>{t("treasurer.net")}</dt>
            <dd data-testid="net" data-minor={dist.d.net}>{money(dist.d.net)}</dd>
            <dt>{t("treasurer.reserve")}</dt>
            <dd data-testid="reserve" data-minor={dist.d.reserve}>{money(dist.d.reserve)}</dd>
            <dt>{t("treasurer.community", { fund: dist.d.communityFund ?? "—" })}</dt>
            <dd data-testid="community" data-minor={dist.d.community}>{money(dist.d.community)}</dd>
            <dt>{t("treasurer.pool")}</dt>
            <dd data-testid="pool" data-minor={dist.d.pool}>{money(dist.d.pool)}</dd>
            <dt>{t("treasurer.unshared")}</dt>
            <dd data-testid="unshared" data-minor={dist.d.unshared}>{money(dist.d.unshared)}</dd>
          </dl>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("me.member")}</th>
                <th scope="col">{t("treasurer.basis")}</th>
                <th scope="col">{t("treasurer.amount")}</th>
                <th scope="col"><span class="sr">{t("treasurer.share")}</span></th>
              </tr>
            </thead>
            <tbody>
              {dist.d.lines.map((l) => (
                <tr key={l.member} data-testid="line" data-member={l.member} data-minor={l.amount}>
                  <th scope="row"><code>{l.member}</code></th>
                  <td class="num">{formatNumber(l.basis)}</td>
                  <td class="num">{money(l.amount)}</td>
                  <td class="share">
                    <div class="bar" role="img" aria-label={money(l.amount)}>
                      <div class="bar-fill" style={{ width: `${(l.amount / largest) * 100}%` }} />
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p>
            <a href={csv(dist.d)} download={`distribution-${dist.d.period}-${dist.d.currency}.csv`} data-testid="csv">
              {t("treasurer.csv")}
            </a>
          </p>
          {!dist.recorded && (
            <p>
              <button type="button" disabled={busy || !signer} data-testid="distribute" onClick={() => void distribute(dist.d)}>
                {t("treasurer.distribute")}
              </button>{" "}
              <span class="hint">{t("treasurer.distributeHint")}</span>
            </p>
          )}
          {dist.recorded && (
            <>
              <h2>{t("treasurer.reconciliation")}</h2>
              <p>{t("treasurer.reconcileIntro")}</p>
              <button type="button" disabled={busy} data-testid="reconcile" onClick={() => void reconcile()}>
                {t("treasurer.reconcile")}
              </button>
            </>
          )}
          {dist.recorded && rec && (
            <>
              <p class="verdict-inline valid" data-testid="reconcile-verdict">{t("verify.valid")}: {rec.headline}</p>
              <table data-testid="reconciliation">
                <thead>
                  <tr>
                    <th scope="col">{t("me.member")}</th>
                    <th scope="col" class="num">{t("treasurer.due")}</th>
                    <th scope="col" class="num">{t("treasurer.paid")}</th>
                    <th scope="col" class="num">{t("treasurer.difference")}</th>
                    <th scope="col">{t("proposals.state")}</th>
                    <th scope="col"><span class="sr">{t("treasurer.pay")}</span></th>
                  </tr>
                </thead>
                <tbody>
                  {rec.r.lines.map((l) => (
                    <tr key={l.member} data-testid="rec-line" data-member={l.member} data-due={l.amount} data-paid={l.paid} data-difference={l.difference} data-state={l.state}>
                      <th scope="row"><code>{l.member}</code></th>
                      <td class="num">{money(l.amount)}</td>
                      <td class="num">{money(l.paid)}</td>
                      <td class="num">{money(l.difference)}</td>
                      <td>{t(`treasurer.state.${l.state}` as MessageKey)}</td>
                      <td>
                        {l.difference > 0 && l.state !== "unclaimed" && (
                          <span class="pay">
                            <input
                              aria-label={t("treasurer.reference", { member: l.member })}
                              data-testid="reference"
                              placeholder={t("treasurer.referencePlaceholder")}
                              value={refs[l.member] ?? ""}
                              onInput={(e) => setRefs({ ...refs, [l.member]: (e.target as HTMLInputElement).value })}
                            />{" "}
                            <button type="button" disabled={busy || !signer} data-testid="pay" onClick={() => void pay(dist.d, l.member, l.amount, "paid")}>
                              {t("treasurer.markPaid")}
                            </button>{" "}
                            <button type="button" class="secondary" disabled={busy || !signer} data-testid="pay-failed" onClick={() => void pay(dist.d, l.member, l.amount, "failed")}>
                              {t("treasurer.markFailed")}
                            </button>
                          </span>
                        )}
                      </td>
                    </tr>
                  ))}
                  <tr data-testid="rec-total" data-due={rec.r.due} data-paid={rec.r.paid} data-difference={rec.r.difference}>
                    <th scope="row">{t("treasurer.total")}</th>
                    <td class="num">{money(rec.r.due)}</td>
                    <td class="num">{money(rec.r.paid)}</td>
                    <td class="num">{money(rec.r.difference)}</td>
                    <td colSpan={2}>{rec.r.unclaimed > 0 ? t("treasurer.unclaimed", { amount: money(rec.r.unclaimed) }) : ""}</td>
                  </tr>
                </tbody>
              </table>
              <p>
                <a href={recCsv(rec.r)} download={`reconciliation-${period}-${currency}.csv`} data-testid="rec-csv">
                  {t("treasurer.recCsv")}
                </a>
              </p>
            </>
          )}
        </>
      )}
    </section>
  );
}
