// Entry point. Refuses to run outside a secure context (keys and WebCrypto need one) and says
// why, in the visitor's language; otherwise mounts the portal.
import { render } from "preact";
import { App } from "./app";
import { initialLang, setLang, t } from "./i18n";
import { run } from "./verifier";
import "./style.css";

declare global {
  interface Window {
    /** The verifier, for the end-to-end test that runs every vector through the browser. */
    coopledgerVerifier?: { run: typeof run };
  }
}
window.coopledgerVerifier = { run };

setLang(initialLang());
const root = document.getElementById("app");
if (root) {
  if (!window.isSecureContext) {
    render(
      <main class="refusal" role="alert">
        <h1>{t("insecure.title")}</h1>
        <p>{t("insecure.body")}</p>
      </main>,
      root,
    );
  } else {
    render(<App />, root);
  }
}
