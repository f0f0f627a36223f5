// A receipt after an action: what the page itself verified about the entry the member signed.
import { formatNumber, t } from "../i18n";
import type { CheckedReceipt } from "../entries";

export function Receipt({ receipt }: { receipt: CheckedReceipt }) {
  const r = receipt.result;
  return (
    <section class="receipt" aria-labelledby="receipt-h" data-testid="receipt">
      <h2 id="receipt-h">{t("receipt.heading")}</h2>
      <p data-testid="receipt-line">
        {t("receipt.entry", {
          index: formatNumber(r.index),
          size: formatNumber(r.checkpoint.size),
          signers: receipt.signers.join(", "),
        })}
      </p>
      <p class="hint">{t("receipt.checked")}</p>
    </section>
  );
}
