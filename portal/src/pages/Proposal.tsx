// One proposal: its terms, and once closed its result — participation against the quorum and
// the yes share against the threshold, each as a bar with its line — and a recount in this
// browser: the tally bundle (every vote, proved under a signed checkpoint) through the ledger's
// own recount, compiled to WebAssembly.
import { useEffect, useState } from "preact/hooks";
import { formatDate, lang, t } from "../i18n";
import type { MessageKey } from "../messages";
import { call, subscribe } from "../rpc";
import { VotePanel, type VotableProposal } from "./Vote";
import { session, type Session } from "../session";
import { run, type Answer } from "../verifier";

interface Ratio {
  minimum?: string;
  minimumPpm?: number;
  ratio?: string;
  ratioPpm?: number;
  comparator?: string;
}

interface IrvRound {
  totals: Record<string, string>;
  exhausted: string;
  elected: number | null;
  eliminated: number | null;
  tiedForLast: number[];
}

interface ProposalView extends VotableProposal {
  title: string;
  kind: string;
  eligible: Record<string, number>;
  rules: VotableProposal["rules"] & { quorum: Ratio; threshold: Ratio };
  tally?: {
    ballots: number;
    byProxy: number;
    participation: string;
    quorumMet: boolean;
    outcome: string;
    winner?: number;
    result: {
      yesNo?: { yesShare: string | null; thresholdMet: boolean };
      choices?: { totals: Record<string, string>; tied: number[]; winner: number | null };
      rankedChoice?: { rounds: IrvRound[]; winner: number | null };
    };
  };
}

/** Support per choice as bars, the winner marked. */
function ChoiceBars({ p, totals, winner }: { p: ProposalView; totals: Record<string, string>; winner: number | null | undefined }) {
  return (
    <>
      <h3>{t("result.choices")}</h3>
      {p.choices.map((c, i) => {
        const v = totals[String(i)] ?? "0/1";
        const x = fraction(v) ?? 0;
        return (
          <div class="bar-row" key={c} data-testid="choice-bar" data-choice={i}>
            <div class="bar-label">
              {c}: <strong>{v}</strong> ({percent(x)}){winner === i ? ` — ${t("result.winner")}` : ""}
            </div>
            <div class="bar" role="img" aria-label={`${c} ${percent(x)}`}>
              <div class="bar-fill" style={{ width: `${Math.min(100, x * 100)}%` }} />
            </div>
          </div>
        );
      })}
    </>
  );
}

/** Every instant-runoff round: each choice's share, who was eliminated, who was elected. */
function Rounds({ p, rounds }: { p: ProposalView; rounds: IrvRound[] }) {
  return (
    <>
      <h3>{t("result.rounds")}</h3>
      <table data-testid="irv-rounds">
        <thead>
          <tr>
            <th scope="col">{t("result.choice")}</th>
            {rounds.map((_, r) => (
              <th scope="col" key={r}>{t("result.round", { n: r + 1 })}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {p.choices.map((c, i) => (
            <tr key={c}>
              <th scope="row">{c}</th>
              {rounds.map((round, r) => {
                const v = round.totals[String(i)];
                const mark =
                  round.elected === i ? t("result.elected", { n: r + 1 }) : round.eliminated === i ? t("result.eliminated", { n: r + 1 }) : "";
                return (
                  <td key={r} data-testid="irv-cell" data-choice={i} data-round={r + 1} class="num">
                    {v === undefined ? "—" : `${v} (${percent(fraction(v) ?? 0)})`}
                    {mark && <div class="tag">{mark}</div>}
                  </td>
                );
              })}
            </tr>
          ))}
          <tr>
            <th scope="row">{t("result.exhausted")}</th>
            {rounds.map((round, r) => (
              <td key={r} class="num">{round.exhausted}</td>
            ))}
          </tr>
        </tbody>
      </table>
    </>
  );
}

/** "n/d" as a number for drawing only (never for deciding: the rules use exact fractions). */
function fraction(s: string | null | undefined): number | undefined {
  if (!s) return undefined;
  const [n, d] = s.split("/").map(Number);
  return n !== undefined && d ? n / d : undefined;
}

function ratioText(r: Ratio, exact?: string, ppm?: number): string {
  if (exact) return exact;
  if (ppm !== undefined) return `${ppm}/1000000`;
  return r.minimum ?? r.ratio ?? "—";
}

function percent(x: number): string {
  return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: 1 }).format(x);
}

/** A bar for `value` (a fraction "n/d") with a line at `line`. */
function Bar({ label, value, line, lineLabel, testid }: { label: string; value: string; line: number | undefined; lineLabel: string; testid: string }) {
  const v = fraction(value) ?? 0;
  return (
    <div class="bar-row" data-testid={testid}>
      <div class="bar-label">
        {label}: <strong>{value}</strong> ({percent(v)}) — {lineLabel}
      </div>
      <div class="bar" role="img" aria-label={`${label} ${percent(v)}, ${lineLabel}`}>
        <div class="bar-fill" style={{ width: `${Math.min(100, v * 100)}%` }} />
        {line !== undefined && <div class="bar-line" style={{ left: `${Math.min(100, line * 100)}%` }} />}
      </div>
    </div>
  );
}

export function Proposal({ id }: { id: string }) {
  const [s, setS] = useState<Session>();
  const [p, setP] = useState<ProposalView>();
  const [recount, setRecount] = useState<Answer>();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string>();
  const load = () =>
    Promise.all([session(), call<ProposalView>("gov_proposal", [id])])
      .then(([sess, view]) => {
        setS(sess);
        setP(view);
      })
      .catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
  useEffect(() => {
    void load();
    // Votes, proxies and the tally at the close arrive in new checkpoints.
    return subscribe("ledger_subscribeCheckpoints", () => void load());
  }, [id]);

  const doRecount = async () => {
    if (!s) return;
    setBusy(true);
    setProblem(undefined);
    try {
      const bundle = await call<unknown>("gov_tallyBundle", [id]);
      setRecount(await run({ op: "bundle", text: JSON.stringify(bundle), vkey: s.vkey }));
    } catch (e) {
      setProblem(String(e instanceof Error ? e.message : e));
    } finally {
      setBusy(false);
    }
  };

  if (problem && !p) return <p role="alert">{problem}</p>;
  if (!p) return <p aria-busy="true">{t("loading")}</p>;
  const q = p.rules.quorum;
  const th = p.rules.threshold;
  const yesNo = p.tally?.result.yesNo;
  const choices = p.tally?.result.choices;
  const ranked = p.tally?.result.rankedChoice;
  return (
    <section aria-labelledby="proposal-h">
      <h1 id="proposal-h">{p.title}</h1>
      <dl class="facts">
        <dt>{t("proposals.kind")}</dt>
        <dd>{t(`kind.${p.kind}` as MessageKey)}</dd>
        <dt>{t("proposals.state")}</dt>
        <dd>{t(`state.${p.status.state}` as MessageKey)}</dd>
        <dt>{t("proposals.when")}</dt>
        <dd>{formatDate(p.opensMs)} – {formatDate(p.closesMs)}</dd>
        {p.choices.length > 0 && (
          <>
            <dt>{t("proposal.choices")}</dt>
            <dd>{p.choices.join(" · ")}</dd>
          </>
        )}
      </dl>
      {s && <VotePanel p={p} s={s} changed={() => void load()} />}
      {p.tally ? (
        <>
          <h2>{t("result.heading")}</h2>
          <p class="outcome" data-testid="result-outcome">{t(`outcome.${p.tally.outcome}` as MessageKey)}</p>
          <Bar
            label={t("result.participation")}
            value={p.tally.participation}
            line={fraction(ratioText(q, q.minimum, q.minimumPpm))}
            lineLabel={t(p.tally.quorumMet ? "result.quorumMet" : "result.quorumNotMet", { quorum: ratioText(q, q.minimum, q.minimumPpm) })}
            testid="bar-participation"
          />
          {yesNo?.yesShare && (
            <Bar
              label={t("result.yesShare")}
              value={yesNo.yesShare}
              line={fraction(ratioText(th, th.ratio, th.ratioPpm))}
              lineLabel={t(yesNo.thresholdMet ? "result.thresholdMet" : "result.thresholdNotMet", { threshold: ratioText(th, th.ratio, th.ratioPpm) })}
              testid="bar-yes"
            />
          )}
          {choices && <ChoiceBars p={p} totals={choices.totals} winner={choices.winner} />}
          {ranked && <Rounds p={p} rounds={ranked.rounds} />}
          <p>{t("result.ballots", { ballots: p.tally.ballots, proxies: p.tally.byProxy })}</p>
          <button type="button" disabled={busy} data-testid="recount" onClick={() => void doRecount()}>
            {busy ? t("verify.running") : t("result.recount")}
          </button>
          <div aria-live="polite">
            {problem && <p role="alert">{problem}</p>}
            {recount && (
              <div class={`verdict ${recount.valid ? "valid" : "invalid"}`} data-testid="recount-verdict">
                <p class="word">{recount.valid ? t("verify.valid") : t("verify.invalid")}</p>
                <p>{recount.headline ?? recount.cause ?? recount.error}</p>
              </div>
            )}
          </div>
        </>
      ) : (
        <p>{t("result.notYet")}</p>
      )}
    </section>
  );
}
