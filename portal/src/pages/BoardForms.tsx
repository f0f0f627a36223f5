// The board's other work, signed with the key file loaded on the board page: putting a
// question to the members (any kind of decision, any method its rules allow), registering a
// party (controller, recipient, authority) and publishing a consent notice with its text (the
// ledger gets the text's SHA-256; the node then keeps the text for members' pages).
import { useEffect, useState } from "preact/hooks";
import { useAction } from "../action";
import { submit, type CheckedReceipt, type Signer } from "../entries";
import { t } from "../i18n";
import { b64 } from "../keys";
import type { MessageKey } from "../messages";
import { call } from "../rpc";
import type { Session } from "../session";

const KINDS = ["ordinary", "special", "bylaws_amendment", "admission", "expulsion", "distribution_approval", "board_election"] as const;
type Kind = (typeof KINDS)[number];
const MINUTE = 60_000;
const DAY = 86_400_000;

interface Rules {
  methods: string[];
  minDurationMs: number;
  maxDurationMs: number;
}

type Done = (r: CheckedReceipt, note: string) => void;

/** Lines of a textarea, trimmed, empty ones dropped. */
function lines(s: string): string[] {
  return s.split("\n").map((l) => l.trim()).filter(Boolean);
}

async function readJson(f: File | undefined): Promise<unknown> {
  if (!f) throw new Error(t("board.fileNeeded"));
  try {
    return JSON.parse(await f.text()) as unknown;
  } catch {
    throw new Error(t("board.notJson", { file: f.name }));
  }
}

export function NewProposal({ s, signer, done }: { s: Session; signer?: Signer; done: Done }) {
  const [rules, setRules] = useState<Record<string, Rules>>({});
  const [kind, setKind] = useState<Kind>("ordinary");
  const [title, setTitle] = useState("");
  const [method, setMethod] = useState("yes_no");
  const [choices, setChoices] = useState("");
  const [opensIn, setOpensIn] = useState("0");
  const [minutes, setMinutes] = useState(String((7 * DAY) / MINUTE));
  const [subject, setSubject] = useState("");
  const [file, setFile] = useState<File>();
  const [document, setDocument] = useState<File>();
  const { busy, problem, act } = useAction();
  useEffect(() => {
    void call<{ decisions: Record<string, Rules> }>("gov_bylaws").then((b) => setRules(b.decisions));
  }, []);
  const methods = rules[kind]?.methods ?? ["yes_no"];
  useEffect(() => {
    if (!methods.includes(method)) setMethod(methods[0] ?? "yes_no");
  }, [kind, rules]);
  const propose = () =>
    act(async () => {
      if (!signer) return;
      const now = Date.now();
      const opensMs = now + Math.round(Number(opensIn) * MINUTE);
      const p: Record<string, unknown> = {
        kind,
        title: title.trim(),
        method,
        opensMs,
        closesMs: opensMs + Math.round(Number(minutes) * MINUTE),
      };
      if (method !== "yes_no") p.choices = lines(choices);
      if (kind === "admission") p.application = subject.trim();
      if (kind === "expulsion") p.member = subject.trim();
      if (kind === "bylaws_amendment") p.bylaws = await readJson(file);
      if (kind === "distribution_approval") p.policy = await readJson(file);
      if (document) {
        p.document = b64(new Uint8Array(await crypto.subtle.digest("SHA-256", await document.arrayBuffer())));
      }
      // Signed at the instant voting opens when it opens now (the rules' notice check).
      const r = await submit(signer, s.coop.origin, "gov.propose", p, s.vkey, now);
      done(r, t("board.proposed", { title: title.trim() }));
      setTitle("");
      setChoices("");
    });
  return (
    <form aria-labelledby="propose-h" onSubmit={(e) => { e.preventDefault(); void propose(); }}>
      <h2 id="propose-h">{t("board.proposeHeading")}</h2>
      <label for="p-kind">{t("proposals.kind")}</label>
      <select id="p-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as Kind)}>
        {KINDS.map((k) => (
          <option key={k} value={k}>{t(`kind.${k}` as MessageKey)}</option>
        ))}
      </select>
      <label for="p-title">{t("proposals.title")}</label>
      <input id="p-title" type="text" maxLength={200} value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
      <label for="p-method">{t("board.method")}</label>
      <select id="p-method" value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
        {methods.map((m) => (
          <option key={m} value={m}>{t(`method.${m}` as MessageKey)}</option>
        ))}
      </select>
      {method !== "yes_no" && (
        <>
          <label for="p-choices">{t(kind === "board_election" ? "board.candidates" : "board.choices")}</label>
          <textarea id="p-choices" rows={4} value={choices} onInput={(e) => setChoices((e.target as HTMLTextAreaElement).value)} />
        </>
      )}
      {(kind === "admission" || kind === "expulsion") && (
        <>
          <label for="p-subject">{t(kind === "admission" ? "board.application" : "reset.member")}</label>
          <input id="p-subject" type="text" autocomplete="off" spellcheck={false} value={subject} onInput={(e) => setSubject((e.target as HTMLInputElement).value)} />
        </>
      )}
      {(kind === "bylaws_amendment" || kind === "distribution_approval") && (
        <>
          <label for="p-file">{t(kind === "bylaws_amendment" ? "board.bylawsFile" : "board.policyFile")}</label>
          <input id="p-file" type="file" accept="application/json,.json" onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0])} />
        </>
      )}
      <label for="p-opens">{t("board.opensIn")}</label>
      <input id="p-opens" type="number" min="0" step="any" value={opensIn} onInput={(e) => setOpensIn((e.target as HTMLInputElement).value)} />
      <label for="p-minutes">{t("board.minutes")}</label>
      <input id="p-minutes" type="number" min="0" step="any" value={minutes} onInput={(e) => setMinutes((e.target as HTMLInputElement).value)} />
      <label for="p-document">{t("board.document")}</label>
      <input id="p-document" type="file" onChange={(e) => setDocument((e.target as HTMLInputElement).files?.[0])} />
      <button type="submit" disabled={busy || !signer || !title.trim()} data-testid="propose">{t("board.propose")}</button>
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </form>
  );
}

export function RegisterParty({ s, signer, done }: { s: Session; signer?: Signer; done: Done }) {
  const [party, setParty] = useState("");
  const [kind, setKind] = useState("recipient");
  const [name, setName] = useState("");
  const [jurisdiction, setJurisdiction] = useState("");
  const { busy, problem, act } = useAction();
  const register = () =>
    act(async () => {
      if (!signer) return;
      const p = { party: party.trim(), kind, name: name.trim(), jurisdiction: jurisdiction.trim() };
      done(await submit(signer, s.coop.origin, "party.register", p, s.vkey), t("board.registered", { party: p.party }));
      setParty("");
      setName("");
    });
  return (
    <form aria-labelledby="party-h" onSubmit={(e) => { e.preventDefault(); void register(); }}>
      <h2 id="party-h">{t("board.partyHeading")}</h2>
      <label for="party-id">{t("board.partyId")}</label>
      <input id="party-id" type="text" value={party} onInput={(e) => setParty((e.target as HTMLInputElement).value)} />
      <label for="party-kind">{t("proposals.kind")}</label>
      <select id="party-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
        {["controller", "recipient", "authority"].map((k) => (
          <option key={k} value={k}>{t(`party.${k}` as MessageKey)}</option>
        ))}
      </select>
      <label for="party-name">{t("board.partyName")}</label>
      <input id="party-name" type="text" maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      <label for="party-jurisdiction">{t("board.jurisdiction")}</label>
      <input id="party-jurisdiction" type="text" maxLength={16} value={jurisdiction} onInput={(e) => setJurisdiction((e.target as HTMLInputElement).value)} />
      <button type="submit" disabled={busy || !signer || !party.trim() || !name.trim()} data-testid="register-party">{t("board.register")}</button>
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </form>
  );
}

export function PublishNotice({ s, signer, done }: { s: Session; signer?: Signer; done: Done }) {
  const [f, setF] = useState({
    notice: "",
    version: "1",
    controller: "",
    purposes: "",
    dataCategories: "",
    operations: "",
    recipients: "",
    retentionDays: "365",
    jurisdiction: "",
    lawfulBasis: "dpv:Consent",
    language: "en",
    text: "",
  });
  const [special, setSpecial] = useState(false);
  const { busy, problem, act } = useAction();
  const field = (k: keyof typeof f, label: MessageKey, area = false) => (
    <>
      <label for={`n-${k}`}>{t(label)}</label>
      {area ? (
        <textarea id={`n-${k}`} rows={k === "text" ? 6 : 2} value={f[k]} onInput={(e) => setF({ ...f, [k]: (e.target as HTMLTextAreaElement).value })} />
      ) : (
        <input id={`n-${k}`} type="text" value={f[k]} onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })} />
      )}
    </>
  );
  const publish = () =>
    act(async () => {
      if (!signer) return;
      const text = f.text;
      const digest = b64(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
      const p = {
        notice: f.notice.trim(),
        version: Number(f.version),
        controller: f.controller.trim(),
        purposes: lines(f.purposes),
        dataCategories: lines(f.dataCategories),
        operations: lines(f.operations),
        recipients: lines(f.recipients),
        retentionMs: Math.round(Number(f.retentionDays) * DAY),
        jurisdiction: f.jurisdiction.trim(),
        lawfulBasis: f.lawfulBasis.trim(),
        textDigest: digest,
        language: f.language.trim(),
        specialCategory: special,
      };
      const r = await submit(signer, s.coop.origin, "consent.notice", p, s.vkey);
      // Accepted: hand the text in, so members read exactly what the ledger commits to.
      await call<string[]>("consent_putNoticeText", [text]);
      done(r, t("board.published", { notice: `${p.notice} v${p.version}` }));
    });
  return (
    <form aria-labelledby="notice-h" onSubmit={(e) => { e.preventDefault(); void publish(); }}>
      <h2 id="notice-h">{t("board.noticeHeading")}</h2>
      <p class="hint">{t("board.noticeIntro")}</p>
      {field("notice", "board.noticeId")}
      {field("version", "board.noticeVersion")}
      {field("controller", "party.controller")}
      {field("purposes", "board.purposes", true)}
      {field("dataCategories", "board.categories", true)}
      {field("operations", "board.operations", true)}
      {field("recipients", "board.recipients", true)}
      {field("retentionDays", "board.retention")}
      {field("jurisdiction", "board.jurisdiction")}
      {field("lawfulBasis", "board.lawfulBasis")}
      {field("language", "board.language")}
      <label class="choice">
        <input type="checkbox" id="n-special" checked={special} onChange={(e) => setSpecial((e.target as HTMLInputElement).checked)} /> {t("board.special")}
      </label>
      {field("text", "board.noticeText", true)}
      <button type="submit" disabled={busy || !signer || !f.notice.trim() || !f.text.trim()} data-testid="publish-notice">{t("board.publish")}</button>
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </form>
  );
}
