// A member on one proposal (`gov_voter`): whether they may vote and why not, what their vote
// weighs, how they voted (or their proxy did), and the ballot for every method the rules
// support — yes/no/abstain, single choice, approval, ranked — public or secret, plus giving and
// taking back a proxy. Every action's receipt is checked in the page.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { Receipt } from "../components/Receipt";
import { SecretVoted } from "../components/SecretVoted";
import { voteSecretly, type BallotContent, type SecretVote } from "../ballot";
import { submit, type CheckedReceipt } from "../entries";
import { formatNumber, t } from "../i18n";
import type { MessageKey } from "../messages";
import { call, subscribe } from "../rpc";
import type { Session } from "../session";

export type VoteValue = "yes" | "no" | "abstain" | { choices: number[] };

export interface Voter {
  eligibility: { state: string; class?: string; status?: string };
  weight?: { class: string; classEligible: number; classWeightPpm?: number };
  vote?: { index: number; vote: VoteValue };
  participated?: number;
  proxy?: { to: string; index: number; holderVote?: { index: number; vote: VoteValue } };
  proxiesHeld: number;
}

export interface VotableProposal {
  id: string;
  method: string;
  choices: string[];
  opensMs: number;
  closesMs: number;
  status: { state: string };
  rules: { revote: boolean; secret: boolean; proxies: { allowed: boolean } };
}

/** A vote in words: "Yes", "Ana", "Ana, Ben" (approval), "1. Ana, 2. Ben" (ranked),
 * "Abstain". */
export function voteText(v: VoteValue, p: { method: string; choices: string[] }): string {
  if (typeof v === "string") return t(`vote.${v}` as MessageKey);
  if (v.choices.length === 0) return t("vote.abstain");
  const name = (c: number) => p.choices[c] ?? String(c);
  if (p.method === "ranked_choice") return v.choices.map((c, i) => `${i + 1}. ${name(c)}`).join(", ");
  return v.choices.map(name).join(", ");
}

/** Whether the member still needs to act on an open proposal. */
export function needsVote(v: Voter | undefined): boolean {
  return !!v && v.eligibility.state === "eligible" && !v.vote && v.participated === undefined && !v.proxy;
}

/** Why the member may or may not vote, and what their vote weighs. */
function Standing({ v, p }: { v: Voter; p: VotableProposal }) {
  const e = v.eligibility;
  const reason = t(`voter.${e.state}` as MessageKey, {
    class: e.class ?? "",
    status: e.status ? t(`status.${e.status}` as MessageKey) : "",
  });
  const w = v.weight;
  const weight = w
    ? w.classWeightPpm !== undefined
      ? t("voter.weightClass", { class: w.class, share: `${formatNumber(w.classWeightPpm / 10_000)} %`, n: formatNumber(w.classEligible) })
      : t("voter.weightOne", { n: formatNumber(w.classEligible) })
    : undefined;
  return (
    <div data-testid="voter">
      <p data-testid="eligibility" data-state={e.state}>{reason}</p>
      {weight && <p class="hint" data-testid="weight">{weight}</p>}
      {v.vote && (
        <p data-testid="my-vote">{t("voter.voted", { vote: voteText(v.vote.vote, p), index: formatNumber(v.vote.index) })}</p>
      )}
      {v.participated !== undefined && <p data-testid="my-vote">{t("voter.participated", { index: formatNumber(v.participated) })}</p>}
      {v.proxy && (
        <p data-testid="my-proxy">
          {t("voter.proxyGiven", { to: v.proxy.to, index: formatNumber(v.proxy.index) })}{" "}
          {v.proxy.holderVote
            ? t("voter.proxyVoted", { vote: voteText(v.proxy.holderVote.vote, p) })
            : t("voter.proxyNotYet")}
        </p>
      )}
      {v.proxiesHeld > 0 && <p data-testid="proxies-held">{t("voter.proxiesHeld", { n: formatNumber(v.proxiesHeld) })}</p>}
    </div>
  );
}

/** The ballot for the proposal's method. */
function Ballot({ p, busy, cast }: { p: VotableProposal; busy: boolean; cast: (c: BallotContent) => void }) {
  const [picked, setPicked] = useState<Set<number>>(new Set());
  const [ranks, setRanks] = useState<Record<number, number>>({});
  if (p.method === "yes_no") {
    return (
      <div class="vote" role="group" aria-label={t("vote.ballot")}>
        {(["yes", "no", "abstain"] as const).map((c) => (
          <button key={c} type="button" disabled={busy} data-vote={c} onClick={() => cast({ vote: c })}>
            {t(`vote.${c}`)}
          </button>
        ))}
      </div>
    );
  }
  if (p.method === "single_choice") {
    return (
      <div class="vote" role="group" aria-label={t("vote.ballot")}>
        {p.choices.map((c, i) => (
          <button key={c} type="button" disabled={busy} data-choice={i} onClick={() => cast({ choices: [i] })}>
            {c}
          </button>
        ))}
        <button type="button" class="secondary" disabled={busy} data-vote="abstain" onClick={() => cast({ choices: [] })}>
          {t("vote.abstain")}
        </button>
      </div>
    );
  }
  if (p.method === "approval") {
    return (
      <form onSubmit={(e) => { e.preventDefault(); cast({ choices: [...picked].sort((a, b) => a - b) }); }}>
        <fieldset>
          <legend>{t("vote.approveLegend")}</legend>
          {p.choices.map((c, i) => (
            <label key={c} class="choice">
              <input
                type="checkbox"
                data-choice={i}
                checked={picked.has(i)}
                onChange={(e) => {
                  const next = new Set(picked);
                  if ((e.target as HTMLInputElement).checked) next.add(i);
                  else next.delete(i);
                  setPicked(next);
                }}
              />{" "}
              {c}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy} data-testid="cast">{t("vote.cast")}</button>
      </form>
    );
  }
  // Ranked: a rank per choice (blank: not ranked); cast in rank order.
  const order = Object.entries(ranks)
    .filter(([, r]) => r > 0)
    .sort((a, b) => a[1] - b[1])
    .map(([c]) => Number(c));
  const distinct = new Set(Object.values(ranks).filter((r) => r > 0)).size === order.length;
  return (
    <form onSubmit={(e) => { e.preventDefault(); if (distinct) cast({ choices: order }); }}>
      <fieldset>
        <legend>{t("vote.rankLegend")}</legend>
        {p.choices.map((c, i) => (
          <label key={c} class="choice">
            <select
              data-rank={i}
              aria-label={t("vote.rankOf", { choice: c })}
              value={String(ranks[i] ?? 0)}
              onChange={(e) => setRanks({ ...ranks, [i]: Number((e.target as HTMLSelectElement).value) })}
            >
              <option value="0">—</option>
              {p.choices.map((_, r) => (
                <option key={r} value={String(r + 1)}>{formatNumber(r + 1)}</option>
              ))}
            </select>{" "}
            {c}
          </label>
        ))}
      </fieldset>
      {!distinct && <p role="alert">{t("vote.rankTwice")}</p>}
      <button type="submit" disabled={busy || !distinct} data-testid="cast">{t("vote.cast")}</button>
    </form>
  );
}

export function VotePanel({ p, s, changed }: { p: VotableProposal; s: Session; changed: () => void }) {
  const [v, setV] = useState<Voter>();
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [secret, setSecret] = useState<SecretVote>();
  const [to, setTo] = useState("");
  const { busy, problem, setProblem, act } = useAction();
  const member = s.key?.member;
  const load = async () => {
    if (member) setV(await call<Voter>("gov_voter", [p.id, member]));
  };
  useEffect(() => {
    const again = () => load().catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
    void again();
    // The proxy holder's vote, or this member's from another device, arrives in a checkpoint.
    return subscribe("ledger_subscribeCheckpoints", () => void again());
  }, [p.id, member]);
  if (!s.device || !s.key || s.key.revoked !== undefined || !member) return <p class="hint">{t("vote.notMember")}</p>;
  if (!v) return null;
  const now = Date.now();
  const open = p.status.state === "open" && now >= p.opensMs && now < p.closesMs;
  const mayVote = open && v.eligibility.state === "eligible";
  const voted = !!v.vote || v.participated !== undefined;
  const canCast = mayVote && (!voted || (p.rules.revote && !p.rules.secret));
  const done = async (r: CheckedReceipt) => {
    setReceipt(r);
    await load();
    changed();
  };
  const cast = (c: BallotContent) =>
    void act(async () => {
      if (p.rules.secret) {
        setSecret(await voteSecretly(s, p.id, c));
        await load();
        changed();
        return;
      }
      await done(await submit(s.device!, s.coop.origin, "gov.vote", { proposal: p.id, member, ...c }, s.vkey));
    });
  return (
    <section aria-labelledby="my-vote-h" data-testid="vote-panel">
      <h2 id="my-vote-h">{t("voter.heading")}</h2>
      {needsVote(v) && open && <p class="needs" data-testid="needs-vote">{t("voter.needs")}</p>}
      <Standing v={v} p={p} />
      {canCast && (
        <>
          {voted && <p class="hint">{t("voter.revote")}</p>}
          <Ballot p={p} busy={busy} cast={cast} />
        </>
      )}
      {mayVote && p.rules.proxies.allowed && !p.rules.secret && (
        <form
          class="proxy"
          onSubmit={(e) => {
            e.preventDefault();
            void act(async () => {
              await done(await submit(s.device!, s.coop.origin, "gov.proxy", { proposal: p.id, member, to: to.trim() }, s.vkey));
              setTo("");
            });
          }}
        >
          <label for="proxy-to">{t("voter.proxyTo")}</label>
          <input id="proxy-to" type="text" autocomplete="off" spellcheck={false} value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
          <button type="submit" class="secondary" disabled={busy || !to.trim()} data-testid="give-proxy">{t("voter.giveProxy")}</button>
          {v.proxy && (
            <button
              type="button"
              class="secondary"
              disabled={busy}
              data-testid="revoke-proxy"
              onClick={() =>
                void act(async () => done(await submit(s.device!, s.coop.origin, "gov.proxy", { proposal: p.id, member }, s.vkey)))
              }
            >
              {t("voter.revokeProxy")}
            </button>
          )}
        </form>
      )}
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {secret && <SecretVoted vote={secret} />}
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
