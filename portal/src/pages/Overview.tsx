// The co-op at a glance: its ledger, members, bylaws version and the latest signed checkpoint,
// updated live over the node's WebSocket subscription.
import { useEffect, useState } from "preact/hooks";
import { formatNumber, t } from "../i18n";
import { call, subscribe, type CheckpointInfo, type CoopInfo } from "../rpc";
import { pinKey, pinnedKey } from "../session";

/** Pinning the co-op's published verifier key in this browser. */
function Pin({ served }: { served: string }) {
  const [pinned, setPinned] = useState(pinnedKey());
  const [pasted, setPasted] = useState("");
  return (
    <section aria-labelledby="pin-h">
      <h2 id="pin-h">{t("pin.heading")}</h2>
      <p>{t("pin.intro")}</p>
      <p data-testid="pin-state">{pinned ? t("pin.pinned") : t("pin.notPinned")}</p>
      {pinned && pinned !== served && (
        <p role="alert" class="warning" data-testid="pin-mismatch">{t("pin.mismatch", { pinned, served })}</p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const k = pasted.trim();
          pinKey(k);
          setPinned(k);
          setPasted("");
        }}
      >
        <label for="pin-input">{t("pin.paste")}</label>
        <input id="pin-input" type="text" spellcheck={false} autocomplete="off" value={pasted} onInput={(e) => setPasted((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={!pasted.trim()} data-testid="pin">{t("pin.pin")}</button>{" "}
        {pinned && (
          <button type="button" class="secondary" data-testid="unpin" onClick={() => { pinKey(undefined); setPinned(undefined); }}>
            {t("pin.forget")}
          </button>
        )}
      </form>
    </section>
  );
}

export function Overview() {
  const [info, setInfo] = useState<CoopInfo>();
  const [checkpoint, setCheckpoint] = useState<CheckpointInfo>();
  const [vkey, setVkey] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    Promise.all([
      call<CoopInfo>("gov_info"),
      call<CheckpointInfo>("ledger_checkpoint"),
      call<string>("ledger_verifierKey"),
    ])
      .then(([i, c, k]) => {
        setInfo(i);
        setCheckpoint(c);
        setVkey(k);
      })
      .catch((e: Error) => setError(t("error.rpc", { message: e.message })));
    return subscribe<CheckpointInfo>("ledger_subscribeCheckpoints", setCheckpoint);
  }, []);
  if (error) return <p role="alert">{error}</p>;
  if (!info || !checkpoint) return <p aria-busy="true">{t("loading")}</p>;
  return (
    <section aria-labelledby="overview-h">
      <h1 id="overview-h">{info.name}</h1>
      <dl class="facts">
        <dt>{t("overview.origin")}</dt>
        <dd><code>{info.origin}</code></dd>
        <dt>{t("overview.members")}</dt>
        <dd data-testid="members">{formatNumber(info.members)}</dd>
        <dt>{t("overview.bylaws")}</dt>
        <dd>{formatNumber(info.bylawsVersion)}</dd>
        <dt>{t("overview.size")}</dt>
        <dd data-testid="size" aria-live="polite">{formatNumber(checkpoint.size)}</dd>
        <dt>{t("overview.root")}</dt>
        <dd><code class="wrap">{checkpoint.root}</code></dd>
        <dt>{t("overview.vkey")}</dt>
        <dd><code class="wrap" data-testid="vkey">{vkey}</code></dd>
      </dl>
      {vkey && <Pin served={vkey} />}
      <h2>{t("overview.checkpoint")}</h2>
      <pre class="note" data-testid="note">{checkpoint.note}</pre>
      <p class="hint">{t("overview.live")}</p>
    </section>
  );
}
