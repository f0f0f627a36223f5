// The treasurer's page: a period's books (revenues and expenses) and its distribution — the
// recorded one, or the preview of what `revenue.distribute` must carry — with the reserve, the
// community fund, the pool and a bar per member line; the figures are the node's own, in integer
// minor units, shown as money and exported as CSV.
import { useState } from "preact/hooks";
import { useAction } from "../action";
import { formatNumber, t } from "../i18n";
import { formatMoney } from "../money";
import { call, RpcError } from "../rpc";

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
  const { busy, problem, act } = useAction();

  const show = () =>
    act(async () => {
      setDist(undefined);
      setBooks(await call<Books>("revenue_ledger", [period, currency]));
      try {
        setDist({ d: await call<Distribution>("revenue_distribution", [period, currency]), recorded: true });
      } catch (e) {
        // 2001 NOT_FOUND: nothing recorded yet; show what the log implies.
        if (!(e instanceof RpcError && e.code === 2001)) throw e;
        setDist({ d: await call<Distribution>("revenue_preview", [period, currency]), recorded: false });
      }
    });

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
      <div aria-live="polite">{problem && <p role="alert" data-testid="problem">{problem}</p>}</div>
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
        </>
      )}
    </section>
  );
}
