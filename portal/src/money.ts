// Money on screen: integer minor units, never floats. The currency's number of minor digits
// comes from Intl (2 for EUR and CAD, 0 for JPY); the whole part is formatted by Intl as an
// integer (exact), and the minor digits are placed after it with the language's decimal sign.
import { lang } from "./i18n";

export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** `minor` units of `currency` as the current language writes money, e.g. "480,00 €". */
export function formatMoney(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  const scale = 10 ** digits;
  const whole = Math.trunc(minor / scale);
  const cents = String(Math.abs(minor % scale)).padStart(digits, "0");
  let parts: Intl.NumberFormatPart[];
  try {
    parts = new Intl.NumberFormat(lang(), { style: "currency", currency, maximumFractionDigits: 0 }).formatToParts(whole);
  } catch {
    return `${minor} ${currency} (minor units)`;
  }
  const decimal = new Intl.NumberFormat(lang()).formatToParts(1.5).find((p) => p.type === "decimal")?.value ?? ".";
  const last = parts.map((p) => p.type).lastIndexOf("integer");
  return parts.map((p, i) => (i === last && digits > 0 ? `${p.value}${decimal}${cents}` : p.value)).join("");
}
