// The member's consent dashboard: one row per grant (notice, purposes × recipients × data
// categories) with its status, when it was given and until when, and the data uses made under
// it; give consent to a notice, withdraw in one click, and export the regulator bundle, which is
// verified here before it is offered for download.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { Receipt } from "../components/Receipt";
import { submit, type CheckedReceipt } from "../entries";
import { formatDate, formatNumber, t } from "../i18n";
import type { MessageKey } from "../messages";
import { b64 } from "../keys";
import { call, RpcError, subscribe } from "../rpc";
import { session, type Session } from "../session";
import { run, type Answer } from "../verifier";

interface Notice {
  notice: string;
  version: number;
  textDigest: string;
  language: string;
  controller: string;
  purposes: string[];
  dataCategories: string[];
  recipients: string[];
  retentionMs: number;
  lawfulBasis: string;
}

interface Grant {
  id: string;
  notice: string;
  version: number;
  purposes: string[];
  recipients: string[];
  dataCategories: string[];
  periods: { fromMs: number; untilMs: number }[];
  ms: number;
  status: string;
  ended?: unknown;
}

interface Timeline {
  events: { index: number; ms: number; event: string; grant: string }[];
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

type TimelineEvent = Timeline["events"][number];

/** A notice's text as the node keeps it, checked here against the digest the ledger holds. */
function NoticeText({ notice, version, digest }: { notice: string; version: number; digest: string }) {
  const [text, setText] = useState<{ body: string; ok: boolean }>();
  const [missing, setMissing] = useState(false);
  const load = async () => {
    if (text || missing) return;
    try {
      const body = await call<string>("consent_noticeText", [notice, version]);
      const h = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
      setText({ body, ok: b64(h) === digest });
    } catch (e) {
      if (e instanceof RpcError && e.code === 2001) setMissing(true);
      else throw e;
    }
  };
  return (
    <details data-testid="notice-text" onToggle={(e) => (e.target as HTMLDetailsElement).open && void load()}>
      <summary>{t("consent.readNotice")}</summary>
      {missing && <p class="hint">{t("consent.textMissing")}</p>}
      {text && (
        <>
          <blockquote class="notice-text" data-testid="notice-body">{text.body}</blockquote>
          <p class={text.ok ? "hint" : "warning"} data-testid="notice-check">
            {text.ok ? t("consent.textChecked") : t("consent.textMismatch")}
          </p>
        </>
      )}
    </details>
  );
}

interface UseEntry {
  decoded: { body: { payload: { kind: string; recipient: string; purpose: string; dataCategories: string[] } } };
}

/** Every event of one grant, oldest first; each data use with what it released, to whom, why. */
function History({ events }: { events: TimelineEvent[] }) {
  const [uses, setUses] = useState<Record<number, string>>({});
  useEffect(() => {
    void (async () => {
      const found: Record<number, string> = {};
      for (const e of events.filter((x) => x.event === "data.use")) {
        const entry = await call<UseEntry>("ledger_getEntry", [e.index]);
        const p = entry.decoded.body.payload;
        found[e.index] = t("consent.useLine", {
          kind: p.kind,
          recipient: p.recipient,
          purpose: p.purpose,
          categories: p.dataCategories.join(", "),
        });
      }
      setUses(found);
    })();
  }, [events.length]);
  return (
    <ol class="history" data-testid="history">
      {events.map((e) => (
        <li key={e.index} data-testid="history-event" data-event={e.event}>
          {formatDate(e.ms)} — {t(`consent.ev.${e.event}` as MessageKey)} ({t("consent.entry", { index: formatNumber(e.index) })})
          {uses[e.index] && <>: {uses[e.index]}</>}
        </li>
      ))}
    </ol>
  );
}

/** The newest version of each notice. */
function latest(all: Notice[]): Notice[] {
  const by = new Map<string, Notice>();
  for (const n of all) if ((by.get(n.notice)?.version ?? 0) < n.version) by.set(n.notice, n);
  return [...by.values()];
}

export function Consent() {
  const [s, setS] = useState<Session>();
  const [notices, setNotices] = useState<Notice[]>([]);
  const [allNotices, setAllNotices] = useState<Notice[]>([]);
  const [grants, setGrants] = useState<Grant[]>([]);
  const [uses, setUses] = useState<Map<string, number>>(new Map());
  const [events, setEvents] = useState<TimelineEvent[]>([]);
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [note, setNote] = useState<string>();
  const [exported, setExported] = useState<{ answer: Answer; url: string }>();
  const { busy, problem, setProblem, act: run_ } = useAction();

  const load = async () => {
    const now = await session();
    setS(now);
    const every = await call<Notice[]>("consent_notices");
    setAllNotices(every);
    setNotices(latest(every));
    if (now.key) {
      setGrants(await call<Grant[]>("consent_grants", [now.key.member]));
      const tl = await call<Timeline>("consent_timeline", [now.key.member]);
      const count = new Map<string, number>();
      for (const e of tl.events) if (e.event === "data.use") count.set(e.grant, (count.get(e.grant) ?? 0) + 1);
      setUses(count);
      setEvents(tl.events);
    }
  };
  useEffect(() => {
    const again = () => load().catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
    void again();
    return subscribe("ledger_subscribeCheckpoints", () => void again());
  }, []);

  const act = (f: () => Promise<void>) =>
    run_(async () => {
      setNote(undefined);
      await f();
      await load();
    });

  if (!s) return <p aria-busy="true">{problem ?? t("loading")}</p>;
  if (!s.key || !s.device)
    return (
      <section aria-labelledby="consent-h">
        <h1 id="consent-h">{t("consent.heading")}</h1>
        <p>{t("vote.notMember")}</p>
      </section>
    );
  const member = s.key.member;
  const device = s.device;

  const give = (n: Notice) =>
    act(async () => {
      const now = Date.now();
      const payload = {
        member,
        notice: n.notice,
        version: n.version,
        purposes: n.purposes,
        recipients: n.recipients,
        dataCategories: n.dataCategories,
        fromMs: now,
        untilMs: now + YEAR_MS,
      };
      setReceipt(await submit(device, s.coop.origin, "consent.grant", payload, s.vkey));
      setNote(t("consent.given"));
    });
  const withdraw = (g: Grant) =>
    act(async () => {
      setReceipt(await submit(device, s.coop.origin, "consent.withdraw", { member, grant: g.id }, s.vkey));
      setNote(t("consent.withdrawn"));
    });
  const renew = (g: Grant) =>
    act(async () => {
      const until = g.periods.length ? g.periods[g.periods.length - 1]!.untilMs : Date.now();
      const untilMs = Math.max(until, Date.now()) + YEAR_MS;
      setReceipt(await submit(device, s.coop.origin, "consent.renew", { member, grant: g.id, untilMs }, s.vkey));
      setNote(t("consent.renewed", { until: formatDate(untilMs) }));
    });
  const exportBundle = () =>
    act(async () => {
      const bundle = await call<unknown>("consent_bundle", [member]);
      const text = JSON.stringify(bundle, null, 2);
      const answer = await run({ op: "bundle", text, vkey: s.vkey });
      const url = URL.createObjectURL(new Blob([text + "\n"], { type: "application/json" }));
      setExported({ answer, url });
    });

  const noticeDigest = (g: Grant) => allNotices.find((n) => n.notice === g.notice && n.version === g.version)?.textDigest;
  const active = (g: Grant) => g.status === "active" || g.status === "not_yet_valid";
  return (
    <section aria-labelledby="consent-h">
      <h1 id="consent-h">{t("consent.heading")}</h1>
      <h2>{t("consent.mine")}</h2>
      {grants.length === 0 ? (
        <p>{t("consent.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("consent.notice")}</th>
              <th scope="col">{t("consent.scope")}</th>
              <th scope="col">{t("proposals.state")}</th>
              <th scope="col">{t("consent.given.at")}</th>
              <th scope="col">{t("consent.until")}</th>
              <th scope="col">{t("consent.uses")}</th>
              <th scope="col">{t("consent.history")}</th>
              <th scope="col"><span class="sr">{t("consent.withdraw")}</span></th>
            </tr>
          </thead>
          <tbody>
            {grants.map((g) => (
              <tr key={g.id} data-testid="grant" data-grant={g.id}>
                <th scope="row">{g.notice} v{g.version}</th>
                <td>{g.purposes.join(", ")} → {g.recipients.join(", ")}: {g.dataCategories.join(", ")}</td>
                <td data-testid="grant-status">{t(`consent.status.${g.status}` as MessageKey)}</td>
                <td>{formatDate(g.ms)}</td>
                <td>{g.periods.length ? formatDate(g.periods[g.periods.length - 1]!.untilMs) : "—"}</td>
                <td data-testid="grant-uses">{formatNumber(uses.get(g.id) ?? 0)}</td>
                <td>
                  <details data-testid="grant-history">
                    <summary>{t("consent.history")}</summary>
                    <History events={events.filter((e) => e.grant === g.id)} />
                    <NoticeText notice={g.notice} version={g.version} digest={noticeDigest(g) ?? ""} />
                  </details>
                </td>
                <td>
                  {(active(g) || g.status === "expired") && (
                    <button type="button" class="secondary" disabled={busy} data-testid="renew" onClick={() => void renew(g)}>
                      {t("consent.renew")}
                    </button>
                  )}{" "}
                  {active(g) && (
                    <button type="button" class="secondary" disabled={busy} data-testid="withdraw" onClick={() => void withdraw(g)}>
                      {t("consent.withdraw")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{t("consent.notices")}</h2>
      {notices.length === 0 ? (
        <p>{t("consent.noNotices")}</p>
      ) : (
        <ul class="notices">
          {notices.map((n) => (
            <li key={n.notice} data-testid="notice">
              <strong>{n.notice} v{n.version}</strong> — {t("consent.noticeLine", {
                controller: n.controller,
                purposes: n.purposes.join(", "),
                recipients: n.recipients.join(", "),
                categories: n.dataCategories.join(", "),
              })}{" "}
              <button type="button" disabled={busy} data-testid="give" onClick={() => void give(n)}>
                {t("consent.give")}
              </button>
              <NoticeText notice={n.notice} version={n.version} digest={n.textDigest} />
            </li>
          ))}
        </ul>
      )}
      <h2>{t("consent.export")}</h2>
      <p>{t("consent.exportIntro")}</p>
      <button type="button" disabled={busy} data-testid="export" onClick={() => void exportBundle()}>
        {t("consent.exportButton")}
      </button>
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {note && <p data-testid="consent-note">{note}</p>}
        {receipt && <Receipt receipt={receipt} />}
        {exported && (
          <div class={`verdict ${exported.answer.valid ? "valid" : "invalid"}`} data-testid="export-verdict">
            <p class="word">{exported.answer.valid ? t("verify.valid") : t("verify.invalid")}</p>
            <p>{exported.answer.headline ?? exported.answer.cause ?? exported.answer.error}</p>
            {exported.answer.valid && (
              <a href={exported.url} download={`consent-${member}.json`} data-testid="download">
                {t("consent.download")}
              </a>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
