// Every proposal, newest first: its kind, state, when voting ends (or ended) and the outcome.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { Receipt } from "../components/Receipt";
import { SecretVoted } from "../components/SecretVoted";
import { submit, type CheckedReceipt } from "../entries";
import { formatDate, formatDuration, t } from "../i18n";
import type { MessageKey } from "../messages";
import { call, subscribe, type ProposalSummary } from "../rpc";
import { session, type Session } from "../session";
import { voteSecretly, type SecretVote } from "../ballot";
import { needsVote, type Voter } from "./Vote";

function voted(v: Voter | undefined): boolean {
  return !!v && (!!v.vote || v.participated !== undefined);
}

/** Where the member stands on an open proposal, in a word. */
function standing(v: Voter | undefined, running: boolean): string {
  if (!v || !running) return "";
  if (v.eligibility.state !== "eligible") return t("proposals.cannot");
  if (voted(v)) return t("proposals.voted");
  if (v.proxy) return t("proposals.byProxy");
  return t("proposals.needs");
}

function when(p: ProposalSummary, now: number): string {
  if (p.status.state !== "open") return t("proposals.ended", { date: formatDate(p.closesMs) });
  if (now < p.opensMs) return t("proposals.opensIn", { time: formatDuration(p.opensMs - now) });
  if (now < p.closesMs) return t("proposals.endsIn", { time: formatDuration(p.closesMs - now) });
  return t("proposals.ended", { date: formatDate(p.closesMs) });
}

/** Yes / no / abstain on an open yes-no proposal: signed with this device's key, or for a secret
 * ballot cast through the ballot box with a one-time key. */
function VoteButtons({
  p,
  s,
  onVoted,
  onSecret,
}: {
  p: ProposalSummary;
  s: Session;
  onVoted: (r: CheckedReceipt) => void;
  onSecret: (v: SecretVote) => void;
}) {
  const { busy, problem, act } = useAction();
  const vote = (choice: "yes" | "no" | "abstain") =>
    act(async () => {
      if (!s.device || !s.key) return;
      if (p.secret) {
        onSecret(await voteSecretly(s, p.id, { vote: choice }));
        return;
      }
      const payload = { proposal: p.id, member: s.key.member, vote: choice };
      onVoted(await submit(s.device, s.coop.origin, "gov.vote", payload, s.vkey));
    });
  return (
    <div class="vote" role="group" aria-label={t("vote.label", { title: p.title })}>
      {(["yes", "no", "abstain"] as const).map((c) => (
        <button key={c} type="button" disabled={busy} data-vote={c} onClick={() => void vote(c)}>
          {t(`vote.${c}`)}
        </button>
      ))}
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </div>
  );
}

export function Proposals() {
  const [list, setList] = useState<ProposalSummary[]>();
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(Date.now());
  const [s, setS] = useState<Session>();
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [secretVote, setSecretVote] = useState<SecretVote>();
  const [voters, setVoters] = useState<Record<string, Voter>>({});
  useEffect(() => {
    const sess = session();
    sess.then(setS).catch((e: Error) => setError(t("error.rpc", { message: e.message })));
    const load = async () => {
      try {
        const all = await call<ProposalSummary[]>("gov_proposals");
        setList(all);
        // Where this member stands on each open proposal: "needs your vote", voted, by proxy.
        const me = (await sess).key;
        if (me && me.revoked === undefined) {
          const open = all.filter((p) => p.status.state === "open");
          const found = await Promise.all(open.map((p) => call<Voter>("gov_voter", [p.id, me.member])));
          setVoters(Object.fromEntries(open.map((p, i) => [p.id, found[i]!])));
        }
      } catch (e) {
        setError(t("error.rpc", { message: (e as Error).message }));
      }
    };
    void load();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    // A new checkpoint may carry new proposals, votes or a tally.
    const stop = subscribe("ledger_subscribeCheckpoints", () => void load());
    return () => {
      clearInterval(tick);
      stop();
    };
  }, []);
  if (error) return <p role="alert">{error}</p>;
  if (!list) return <p aria-busy="true">{t("loading")}</p>;
  const waiting = list.filter((p) => p.status.state === "open" && now < p.closesMs && needsVote(voters[p.id])).length;
  return (
    <section aria-labelledby="proposals-h">
      <h1 id="proposals-h">{t("proposals.heading")}</h1>
      {waiting > 0 && <p class="needs" data-testid="need-count">{t("proposals.needCount", { n: waiting })}</p>}
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
              <th scope="col">{t("proposals.vote")}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.id} data-testid="proposal">
                <th scope="row"><a href={`#/proposal/${p.id}`}>{p.title}</a></th>
                <td>
                  {t(`kind.${p.kind}` as MessageKey)}
                  {p.secret && <span class="tag"> {t("proposals.secret")}</span>}
                </td>
                <td>{t(`state.${p.status.state}` as MessageKey)}</td>
                <td>{when(p, now)}</td>
                <td data-testid="outcome">{t((p.outcome ? `outcome.${p.outcome}` : "outcome.none") as MessageKey)}</td>
                <td data-testid="my-standing">
                  {standing(voters[p.id], now < p.closesMs)}{" "}
                  {p.status.state === "open" && p.method === "yes_no" && now >= p.opensMs && now < p.closesMs && !voted(voters[p.id]) ? (
                    s?.key && s.device ? (
                      <VoteButtons p={p} s={s} onVoted={setReceipt} onSecret={setSecretVote} />
                    ) : (
                      <span class="hint">{t("vote.notMember")}</span>
                    )
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div aria-live="polite">
        {secretVote && <SecretVoted vote={secretVote} />}
        {receipt && (
          <>
            <p data-testid="voted">{t("vote.recorded")}</p>
            <Receipt receipt={receipt} />
          </>
        )}
      </div>
    </section>
  );
}
