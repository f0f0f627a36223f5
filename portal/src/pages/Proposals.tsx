// Every proposal, newest first: its kind, state, when voting ends (or ended) and the outcome.
import { useEffect, useState } from "preact/hooks";
import { formatDate, formatDuration, t } from "../i18n";
import type { MessageKey } from "../messages";
import { call, subscribe, type ProposalSummary } from "../rpc";

function when(p: ProposalSummary, now: number): string {
  if (p.status.state !== "open") return t("proposals.ended", { date: formatDate(p.closesMs) });
  if (now < p.opensMs) return t("proposals.opensIn", { time: formatDuration(p.opensMs - now) });
  if (now < p.closesMs) return t("proposals.endsIn", { time: formatDuration(p.closesMs - now) });
  return t("proposals.ended", { date: formatDate(p.closesMs) });
}

export function Proposals() {
  const [list, setList] = useState<ProposalSummary[]>();
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const load = () =>
      call<ProposalSummary[]>("gov_proposals")
        .then(setList)
        .catch((e: Error) => setError(t("error.rpc", { message: e.message })));
    load();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    // A new checkpoint may carry new proposals, votes or a tally.
    const stop = subscribe("ledger_subscribeCheckpoints", load);
    return () => {
      clearInterval(tick);
      stop();
    };
  }, []);
  if (error) return <p role="alert">{error}</p>;
  if (!list) return <p aria-busy="true">{t("loading")}</p>;
  return (
    <section aria-labelledby="proposals-h">
      <h1 id="proposals-h">{t("proposals.heading")}</h1>
      {list.length === 0 ? (
        <p>{t("proposals.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("proposals.title")}</th>
              <th scope="col">{t("proposals.kind")}</th>
              <th scope="col">{t("proposals.state")}</th>
              <th scope="col">{t("proposals.when")}</th>
              <th scope="col">{t("proposals.outcome")}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.id} data-testid="proposal">
                <th scope="row">{p.title}</th>
                <td>{t(`kind.${p.kind}` as MessageKey)}</td>
                <td>{t(`state.${p.status.state}` as MessageKey)}</td>
                <td>{when(p, now)}</td>
                <td>{t((p.outcome ? `outcome.${p.outcome}` : "outcome.none") as MessageKey)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
