// For a regulator or auditor, with no account: drop a bundle file and the co-op's verifier key;
// the ledger's own verifier (WebAssembly) checks it in this page and says VALID with what it
// proves, or INVALID with the cause. Nothing is sent to the node.
import { useEffect, useState } from "preact/hooks";
import { formatNumber, t } from "../i18n";
import { load, run, size, type Answer } from "../verifier";

export function Verify() {
  const [file, setFile] = useState<{ name: string; text: string }>();
  const [vkey, setVkey] = useState("");
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<Answer>();
  const [problem, setProblem] = useState<string>();
  const [engineKb, setEngineKb] = useState<number>();
  useEffect(() => {
    load()
      .then(() => setEngineKb(Math.round(size() / 1024)))
      .catch((e: Error) => setProblem(e.message));
  }, []);

  const take = async (f: File | undefined) => {
    if (!f) return;
    setAnswer(undefined);
    setFile({ name: f.name, text: await f.text() });
  };
  const verify = async (e: Event) => {
    e.preventDefault();
    setAnswer(undefined);
    if (!file) return setProblem(t("verify.noFile"));
    if (!vkey.trim()) return setProblem(t("verify.noKey"));
    setProblem(undefined);
    setBusy(true);
    try {
      setAnswer(await run({ op: "bundle", text: file.text, vkey: vkey.trim() }));
    } catch (err) {
      setProblem(String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="verify-h">
      <h1 id="verify-h">{t("verify.heading")}</h1>
      <p>{t("verify.intro")}</p>
      <form onSubmit={verify}>
        <div
          class="drop"
          onDragOver={(e) => e.preventDefault()}
          onDrop={(e) => {
            e.preventDefault();
            void take(e.dataTransfer?.files[0]);
          }}
        >
          <label for="bundle-file">{t("verify.file")}</label>
          <p class="hint">{t("verify.drop")}</p>
          <input
            id="bundle-file"
            type="file"
            accept="application/json,.json"
            onChange={(e) => void take((e.target as HTMLInputElement).files?.[0])}
          />
          {file && <p data-testid="file-name"><code>{file.name}</code></p>}
        </div>
        <label for="vkey">{t("verify.vkey")}</label>
        <input
          id="vkey"
          type="text"
          spellcheck={false}
          autocomplete="off"
          aria-describedby="vkey-hint"
          value={vkey}
          onInput={(e) => setVkey((e.target as HTMLInputElement).value)}
        />
        <p id="vkey-hint" class="hint">{t("verify.vkeyHint")}</p>
        <button type="submit" disabled={busy}>
          {busy ? t("verify.running") : t("verify.run")}
        </button>
      </form>
      <div aria-live="polite" data-testid="verdict">
        {problem && <p role="alert">{problem}</p>}
        {answer?.error && <p role="alert">{answer.error}</p>}
        {answer?.valid === true && (
          <div class="verdict valid">
            <p class="word">{t("verify.valid")}</p>
            <p>
              <strong>{t("verify.proves")}:</strong> <span data-testid="headline">{answer.headline}</span>
            </p>
          </div>
        )}
        {answer?.valid === false && (
          <div class="verdict invalid">
            <p class="word">{t("verify.invalid")}</p>
            <p>
              <strong>{t("verify.cause")}:</strong> <span data-testid="cause">{answer.cause}</span>
            </p>
          </div>
        )}
      </div>
      {engineKb !== undefined && <p class="hint">{t("verify.engine", { size: formatNumber(engineKb) })}</p>}
    </section>
  );
}
