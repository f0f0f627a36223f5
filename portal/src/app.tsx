// The portal's frame: a skip link, the section navigation (hash routes, so every page has an
// address and the back button works), the language switch, and the page.
import { useEffect, useState } from "preact/hooks";
import { LANGUAGES, lang, setLang, t, type Lang } from "./i18n";
import { Board } from "./pages/Board";
import { Consent } from "./pages/Consent";
import { Data } from "./pages/Data";
import { Me } from "./pages/Me";
import { Overview } from "./pages/Overview";
import { Proposal } from "./pages/Proposal";
import { Proposals } from "./pages/Proposals";
import { Treasurer } from "./pages/Treasurer";
import { Verify } from "./pages/Verify";

const ROUTES = {
  "#/": { label: "nav.overview", page: Overview },
  "#/proposals": { label: "nav.proposals", page: Proposals },
  "#/me": { label: "nav.me", page: Me },
  "#/consent": { label: "nav.consent", page: Consent },
  "#/data": { label: "nav.data", page: Data },
  "#/board": { label: "nav.board", page: Board },
  "#/treasurer": { label: "nav.treasurer", page: Treasurer },
  "#/verify": { label: "nav.verify", page: Verify },
} as const;
type Route = keyof typeof ROUTES;

function currentRoute(): Route {
  return location.hash in ROUTES ? (location.hash as Route) : "#/";
}

/** `#/proposal/<64 hex>`: one proposal's page. */
function proposalId(): string | undefined {
  return /^#\/proposal\/([0-9a-f]{64})$/.exec(location.hash)?.[1];
}

export function App() {
  const [route, setRoute] = useState<Route>(currentRoute());
  const [proposal, setProposal] = useState<string | undefined>(proposalId());
  const [language, setLanguage] = useState<Lang>(lang());
  useEffect(() => {
    const onHash = () => {
      setRoute(currentRoute());
      setProposal(proposalId());
    };
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    document.title = `${t(ROUTES[route].label)} · ${t("app.title")}`;
  }, [route, language]);
  const Page = ROUTES[route].page;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        {t("app.skip")}
      </a>
      <header>
        <span class="brand">{t("app.title")}</span>
        <nav aria-label={t("nav.label")}>
          <ul>
            {(Object.keys(ROUTES) as Route[]).map((r) => (
              <li key={r}>
                <a href={r} aria-current={r === route && !proposal ? "page" : undefined}>
                  {t(ROUTES[r].label)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <label class="lang">
          {t("app.language")}{" "}
          <select
            value={language}
            onChange={(e) => {
              const l = (e.target as HTMLSelectElement).value as Lang;
              setLang(l);
              setLanguage(l);
            }}
          >
            {(Object.keys(LANGUAGES) as Lang[]).map((l) => (
              <option key={l} value={l}>
                {LANGUAGES[l]}
              </option>
            ))}
          </select>
        </label>
      </header>
      <main id="main" tabIndex={-1}>
        {proposal ? <Proposal key={`${language}${proposal}`} id={proposal} /> : <Page key={language} />}
      </main>
    </>
  );
}
