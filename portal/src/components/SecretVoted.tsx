// What a member keeps after a secret ballot: the box's receipt for the ballot (private: it shows
// how they voted once ballots are published), offered for download, and the checked receipt of
// their public participation.
import { t } from "../i18n";
import type { SecretVote } from "../ballot";
import { Receipt } from "./Receipt";

export function SecretVoted({ vote }: { vote: SecretVote }) {
  return (
    <div data-testid="secret-voted">
      <p>{t("vote.secretCast", { ballot: vote.receipt.ballot.slice(0, 12) })}</p>
      <p class="hint">{t("vote.secretKeep")}</p>
      <a
        href={URL.createObjectURL(new Blob([JSON.stringify(vote.receipt, null, 2) + "\n"], { type: "application/json" }))}
        download={`ballot-${vote.receipt.proposal.slice(0, 12)}.receipt.json`}
        data-testid="ballot-receipt"
        data-receipt={JSON.stringify(vote.receipt)}
      >
        {t("vote.secretDownload")}
      </a>
      <Receipt receipt={vote.participation} />
    </div>
  );
}
