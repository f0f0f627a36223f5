// The board's page: sign with a board member's key file (imported for this page only, never
// stored) and decide the applications waiting — admit or decline many at once, one entry; ask
// for a member's key reset from the request their new device made.
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { KeyFile, type FileSigner } from "../components/KeyFile";
import { Receipt } from "../components/Receipt";
import { submit, type CheckedReceipt } from "../entries";
import { formatDate, formatNumber, t } from "../i18n";
import { call } from "../rpc";
import { session, type Session } from "../session";
import { NewProposal, PublishNotice, RegisterParty } from "./BoardForms";
import { parseResetRequest, type KeyReset } from "./Recovery";

interface Application {
  id: string;
  index: number;
  key: string;
  member: string;
  class: string;
}

export function Board() {
  const [s, setS] = useState<Session>();
  const [signer, setSigner] = useState<FileSigner>();
  const [pending, setPending] = useState<Application[]>([]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [receipt, setReceipt] = useState<CheckedReceipt>();
  const [done, setDone] = useState<number>();
  const [resetText, setResetText] = useState("");
  const [resetAsked, setResetAsked] = useState<string>();
  const [note, setNote] = useState<string>();
  const signed = (r: CheckedReceipt, said: string) => {
    setReceipt(r);
    setNote(said);
  };
  const { busy, problem, setProblem, act } = useAction();

  const load = async () => {
    setS(await session());
    setPending(await call<Application[]>("gov_applications", { pending: true }));
  };
  useEffect(() => {
    load().catch((e: Error) => setProblem(t("error.rpc", { message: e.message })));
  }, []);


  const decide = (type: "member.admit" | "member.decline") =>
    act(async () => {
      if (!s || !signer) return;
      const applications = pending.filter((a) => selected.has(a.id)).map((a) => a.id);
      setReceipt(await submit(signer, s.coop.origin, type, { applications }, s.vkey));
      setDone(applications.length);
      setSelected(new Set());
      await load();
    });

  return (
    <section aria-labelledby="board-h">
      <h1 id="board-h">{t("board.heading")}</h1>
      <p>{t("board.intro")}</p>
      <KeyFile id="board-key" label="board.keyFile" signer={signer} act={act} onSigner={setSigner} />
      <h2>{t("board.pending")}</h2>
      {pending.length === 0 ? (
        <p data-testid="no-pending">{t("board.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("board.select")}</th>
              <th scope="col">{t("board.applicant")}</th>
              <th scope="col">{t("me.class")}</th>
              <th scope="col">{t("board.entry")}</th>
            </tr>
          </thead>
          <tbody>
            {pending.map((a) => (
              <tr key={a.id} data-testid="application">
                <td>
                  <input
                    type="checkbox"
                    id={`app-${a.id}`}
                    aria-label={`${t("board.select")} ${a.member}`}
                    checked={selected.has(a.id)}
                    onChange={(e) => {
                      const next = new Set(selected);
                      if ((e.target as HTMLInputElement).checked) next.add(a.id);
                      else next.delete(a.id);
                      setSelected(next);
                    }}
                  />
                </td>
                <th scope="row"><code>{a.member}</code></th>
                <td>{a.class}</td>
                <td>{formatNumber(a.index)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="actions">
        <button type="button" disabled={busy || !signer || selected.size === 0} onClick={() => void decide("member.admit")}>
          {t("board.admit")}
        </button>{" "}
        <button type="button" class="secondary" disabled={busy || !signer || selected.size === 0} onClick={() => void decide("member.decline")}>
          {t("board.decline")}
        </button>
      </p>
      {s && <NewProposal s={s} signer={signer} done={signed} />}
      {s && <RegisterParty s={s} signer={signer} done={signed} />}
      {s && <PublishNotice s={s} signer={signer} done={signed} />}
      <h2 id="reset-h">{t("board.resetHeading")}</h2>
      <form
        aria-labelledby="reset-h"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            if (!s || !signer) return;
            const req = parseResetRequest(resetText);
            if (!req) throw new Error(t("board.resetBad"));
            setReceipt(await submit(signer, s.coop.origin, "member.key_reset", { ...req }, s.vkey));
            const m = await call<{ record: { keyReset?: KeyReset } }>("gov_member", [req.member]);
            const due = m.record.keyReset?.dueMs;
            setResetAsked(due === undefined ? undefined : t("board.resetAsked", { member: req.member, due: formatDate(due) }));
            setResetText("");
          });
        }}
      >
        <p>{t("board.resetIntro")}</p>
        <label for="reset-input">{t("board.resetLabel")}</label>
        <textarea id="reset-input" rows={4} value={resetText} onInput={(e) => setResetText((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" disabled={busy || !signer || !resetText.trim()} data-testid="ask-reset">{t("board.resetAsk")}</button>
      </form>
      <div aria-live="polite">
        {problem && <p role="alert" data-testid="problem">{problem}</p>}
        {resetAsked && <p data-testid="reset-asked">{resetAsked}</p>}
        {note && <p data-testid="board-note">{note}</p>}
        {done !== undefined && <p data-testid="decided">{t("board.done", { count: formatNumber(done) })}</p>}
        {receipt && <Receipt receipt={receipt} />}
      </div>
    </section>
  );
}
