// Language choice and message lookup. The language comes from ?lang=, else the last choice,
// else the browser's preference. The choice (and a pinned verifier key, which is public: see
// session.ts) is all the portal keeps in localStorage — never key material.
import { en, fr, type Catalog, type MessageKey } from "./messages";

export const LANGUAGES = { en: "English", fr: "Français" } as const;
export type Lang = keyof typeof LANGUAGES;
const CATALOGS: Record<Lang, Catalog> = { en, fr };

function isLang(s: string | null | undefined): s is Lang {
  return s === "en" || s === "fr";
}

export function initialLang(): Lang {
  const asked = new URLSearchParams(location.search).get("lang");
  if (isLang(asked)) return asked;
  const saved = localStorage.getItem("coopledger.lang");
  if (isLang(saved)) return saved;
  const preferred = (navigator.language || "en").slice(0, 2);
  return isLang(preferred) ? preferred : "en";
}

let current: Lang = "en";

export function setLang(l: Lang): void {
  current = l;
  document.documentElement.lang = l;
  localStorage.setItem("coopledger.lang", l);
}

export function lang(): Lang {
  return current;
}

/** The message `key` in the current language with `{name}` placeholders filled in. A key
 * missing from the catalog shows as ⟦key⟧, which the end-to-end test refuses. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = CATALOGS[current][key] ?? `⟦${key}⟧`;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const v = params[name];
    return v === undefined ? whole : typeof v === "number" ? formatNumber(v) : v;
  });
}

export function formatNumber(n: number): string {
  return new Intl.NumberFormat(current).format(n);
}

export function formatDate(ms: number): string {
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(ms),
  );
}

/** "3 d", "5 h", "12 min" or "40 s": the largest whole unit of a duration. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s >= 86400) return t("duration.days", { n: Math.floor(s / 86400) });
  if (s >= 3600) return t("duration.hours", { n: Math.floor(s / 3600) });
  if (s >= 60) return t("duration.minutes", { n: Math.floor(s / 60) });
  return t("duration.seconds", { n: s });
}
