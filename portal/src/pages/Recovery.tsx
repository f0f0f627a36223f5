// The member page's recovery parts: making a recovery code (a member's device), coming back
// with it or asking the board for a key reset (a device the co-op does not know), and refusing
// a reset one did not ask for (any device of the member).
import { useEffect, useRef, useState } from "preact/hooks";
import { useAction } from "../action";
import { keyProof, submit, type CheckedReceipt } from "../entries";
import { formatDate, formatDuration, formatNumber, t } from "../i18n";
import { b64, fingerprint, makeDeviceKey, unb64 } from "../keys";
import { makeRecoveryCode, passkeysOffered, recoverWithCode, recoverWithPasskey } from "../recovery";
import { call, RpcError } from "../rpc";
import type { Session } from "../session";

/** Called after an action with its checked receipt and what to tell the member; refreshes. */
export type Done = (receipt: CheckedReceipt, note?: string) => Promise<void>;

/** A key reset waiting out its veto period (`gov_member`'s `record.keyReset`). */
export interface KeyReset {
  index: number;
  timeMs: number;
  dueMs: number;
  key: string;
  label?: string;
  by: string;
}

/** What a new device hands the board: its key's proof of possession for the member. */
export interface ResetRequest {
  member: string;
  key: string;
  proof: string;
  label?: string;
}

/** Parses a reset request pasted on the board's page; undefined if it is not one. */
export function parseResetRequest(text: string): ResetRequest | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
    const [member, key, proof, label] = [str("member"), str("key"), str("proof"), str("label")];
    const known = ["member", "key", "proof", "label"];
    if (!member || !key || !proof || Object.keys(v).some((k) => !known.includes(k))) return undefined;
    return { member, key, proof, ...(label ? { label } : {}) };
  } catch {
    return undefined;
  }
}

/** A member's recovery code: make one (or a new one, revoking the older recovery keys). */
export function RecoveryCode({ s, member, recoveryKeys, done }: {
  s: Session;
  member: string;
  /** The member's current keys labelled `recovery`. */
  recoveryKeys: { key: string; print: string }[];
  done: Done;
}) {
  const [code, setCode] = useState<string>();
  const [withPasskey, setWithPasskey] = useState(false);
  const [passkeyMade, setPasskeyMade] = useState(false);
  const [passkeyLost, setPasskeyLost] = useState(false);
  const { busy, problem, act } = useAction();
  return (
    <section aria-labelledby="recovery-h">
      <h2 id="recovery-h">{t("recovery.heading")}</h2>
      <p>{t("recovery.intro")}</p>
      {recoveryKeys.length > 0 && (
        <p data-testid="recovery-have">{t("recovery.have", { print: recoveryKeys.map((k) => k.print).join(", ") })}</p>
      )}
      {code ? (
        <div class="code-box">
          <p>{t("recovery.show")}</p>
          <p><code class="recovery-code" data-testid="recovery-code">{code}</code></p>
          {passkeyMade && <p data-testid="passkey-made">{t("recovery.passkeyMade")}</p>}
          {passkeyLost && <p role="alert" data-testid="passkey-lost">{t("recovery.passkeyLost")}</p>}
          <p class="hint">{t("recovery.warn")}</p>
          <button type="button" onClick={() => setCode(undefined)}>{t("recovery.written")}</button>
        </div>
      ) : (
        <>
        {passkeysOffered() && (
          <label class="choice">
            <input type="checkbox" data-testid="with-passkey" checked={withPasskey} onChange={(e) => setWithPasskey((e.target as HTMLInputElement).checked)} />{" "}
            {t("recovery.passkeyOption")}
          </label>
        )}
        <button
          type="button"
          disabled={busy}
          data-testid="make-recovery"
          onClick={() =>
            void act(async () => {
              const made = await makeRecoveryCode(s.device!, s.coop.origin, member, s.vkey, withPasskey ? { coopName: s.coop.name } : undefined);
              setPasskeyMade(made.passkey);
              setPasskeyLost(made.passkeyAsked && !made.passkey);
              // The older recovery keys would still open their kits' doors: revoke them.
              for (const old of recoveryKeys) {
                await submit(s.device!, s.coop.origin, "member.key_revoke", { key: old.key }, s.vkey);
              }
              setCode(made.code);
              await done(made.receipt);
            })
          }
        >
          {recoveryKeys.length > 0 ? t("recovery.remake") : t("recovery.make")}
        </button>
        </>
      )}
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </section>
  );
}

/** On a member's device: sign another device in, from the request it made. */
export function AddDevice({ s, member, done }: { s: Session; member: string; done: Done }) {
  const [text, setText] = useState("");
  const { busy, problem, act } = useAction();
  const add = () =>
    act(async () => {
      const req = parseResetRequest(text);
      if (!req) throw new Error(t("board.resetBad"));
      if (req.member !== member) throw new Error(t("device.notMine", { member: req.member }));
      const payload: Record<string, unknown> = { key: req.key, proof: req.proof };
      if (req.label) payload.label = req.label;
      const r = await submit(s.device!, s.coop.origin, "member.key_add", payload, s.vkey);
      setText("");
      await done(r, t("device.added"));
    });
  return (
    <form aria-labelledby="device-h" onSubmit={(e) => { e.preventDefault(); void add(); }}>
      <h2 id="device-h">{t("device.heading")}</h2>
      <p>{t("device.intro")}</p>
      <label for="add-device-request">{t("device.request")}</label>
      <textarea id="add-device-request" rows={4} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <button type="submit" disabled={busy || !text.trim()} data-testid="add-device">{t("device.add")}</button>
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </form>
  );
}

/** On a member's device: the board's pending reset of their keys, and the veto. */
export function ResetAlert({ s, member, reset, done }: { s: Session; member: string; reset: KeyReset; done: Done }) {
  const [print, setPrint] = useState<string>();
  const { busy, problem, act } = useAction();
  useEffect(() => void fingerprint(unb64(reset.key)).then(setPrint), [reset.key]);
  return (
    <div role="alert" class="warning" data-testid="reset-alert">
      <p>{t("reset.alert", { print: print ?? "…", index: formatNumber(reset.index), due: formatDate(reset.dueMs) })}</p>
      <button
        type="button"
        disabled={busy}
        data-testid="veto"
        onClick={() =>
          void act(async () => {
            const r = await submit(s.device!, s.coop.origin, "member.key_reset_veto", { member, reset: reset.index }, s.vkey);
            await done(r, t("reset.vetoed"));
          })
        }
      >
        {t("reset.veto")}
      </button>
      {problem && <p data-testid="problem">{problem}</p>}
    </div>
  );
}

/** On a device the co-op does not know: come back with a recovery code, or ask the board. */
export function ComeBack({ s, waitMs, done }: { s: Session; waitMs: number; done: Done }) {
  const [code, setCode] = useState("");
  const [label, setLabel] = useState("");
  const [memberId, setMemberId] = useState("");
  const [request, setRequest] = useState<string>();
  const [pending, setPending] = useState<KeyReset>();
  const { busy, problem, act } = useAction();
  const asked = useRef<string>();

  /** Whether the board has asked for this device's reset yet. */
  const check = async () => {
    const m = asked.current;
    if (!m || !s.device) return;
    try {
      const v = await call<{ record: { keyReset?: KeyReset } }>("gov_member", [m]);
      const r = v.record.keyReset;
      setPending(r && r.key === b64(s.device.publicKey) ? r : undefined);
    } catch (e) {
      if (!(e instanceof RpcError && e.code === 2001)) throw e;
    }
  };

  return (
    <>
      <form
        aria-labelledby="recover-h"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            const r = await recoverWithCode(code, s.coop.origin, s.vkey, label);
            await done(r.receipt, t("recovery.recovered", { member: r.member }));
          });
        }}
      >
        <h2 id="recover-h">{t("recovery.useHeading")}</h2>
        <label for="recovery-input">{t("recovery.codeLabel")}</label>
        <input id="recovery-input" type="text" autocomplete="off" spellcheck={false} value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
        <label for="recover-label">{t("me.label")}</label>
        <input id="recover-label" type="text" maxLength={64} value={label} onInput={(e) => setLabel((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy || !code.trim()} data-testid="recover">{t("recovery.recover")}</button>
        {passkeysOffered() && (
          <>
            {" "}
            <button
              type="button"
              class="secondary"
              disabled={busy}
              data-testid="recover-passkey"
              onClick={() =>
                void act(async () => {
                  const r = await recoverWithPasskey(s.coop.origin, s.vkey, label);
                  await done(r.receipt, t("recovery.recovered", { member: r.member }));
                })
              }
            >
              {t("recovery.usePasskey")}
            </button>
          </>
        )}
      </form>
      <form
        aria-labelledby="reset-h"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            const device = s.device ?? (await makeDeviceKey());
            const member = memberId.trim();
            if (!/^m-[0-9a-f]{16}$/.test(member)) throw new Error(t("error.member"));
            const req: ResetRequest = { member, key: b64(device.publicKey), proof: await keyProof(device.privateKey, s.coop.origin, member) };
            if (label.trim()) req.label = label.trim();
            setRequest(JSON.stringify(req));
            asked.current = member;
            await check();
          });
        }}
      >
        <h2 id="reset-h">{t("reset.heading")}</h2>
        <p>{t("reset.intro", { wait: formatDuration(waitMs) })}</p>
        <label for="reset-member">{t("reset.member")}</label>
        <input id="reset-member" type="text" autocomplete="off" spellcheck={false} value={memberId} onInput={(e) => setMemberId((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy || !memberId.trim()} data-testid="make-request">{t("reset.makeRequest")}</button>
      </form>
      {request && (
        <>
          <label for="reset-request">{t("reset.request")}</label>
          <textarea id="reset-request" readOnly rows={4} data-testid="reset-request" value={request} />
          <p>
            <button type="button" class="secondary" disabled={busy} data-testid="check-reset" onClick={() => void act(check)}>
              {t("reset.check")}
            </button>
          </p>
        </>
      )}
      {pending && (
        <div data-testid="reset-pending">
          <p>{t("reset.pending", { index: formatNumber(pending.index), due: formatDate(pending.dueMs) })}</p>
          <button
            type="button"
            disabled={busy}
            data-testid="complete-reset"
            onClick={() =>
              void act(async () => {
                const device = s.device ?? (await makeDeviceKey());
                const member = asked.current!;
                const r = await submit(device, s.coop.origin, "member.key_reset_complete", { member }, s.vkey);
                await done(r, t("reset.completed", { member }));
              })
            }
          >
            {t("reset.complete")}
          </button>
        </div>
      )}
      {problem && <p role="alert" data-testid="problem">{problem}</p>}
    </>
  );
}
