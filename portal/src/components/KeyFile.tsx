// A key file of the `coop` CLI loaded to sign in this page only (board members, treasurers):
// imported non-extractable, its member looked up, nothing of it stored.
import { t } from "../i18n";
import type { Signer } from "../entries";
import { b64, importKeyFile } from "../keys";
import type { MessageKey } from "../messages";
import { call } from "../rpc";
import type { KeyInfo } from "../session";

export type FileSigner = Signer & { member: string };

export function KeyFile({
  id,
  label,
  signer,
  act,
  onSigner,
}: {
  id: string;
  label: MessageKey;
  signer?: FileSigner;
  act: (f: () => Promise<void>) => Promise<void>;
  onSigner: (s: FileSigner) => void;
}) {
  return (
    <p>
      <label for={id}>{t(label)}</label>{" "}
      <input
        id={id}
        type="file"
        accept="application/json,.key,.json"
        onChange={(e) =>
          void act(async () => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (!f) return;
            const k = await importKeyFile(await f.text());
            const info = await call<KeyInfo>("gov_key", [b64(k.publicKey)]);
            onSigner({ ...k, member: info.member });
          })
        }
      />
      {signer && (
        <>
          {" "}
          <span data-testid="signing-as">{t("board.signingAs", { member: signer.member })}</span>
        </>
      )}
    </p>
  );
}
