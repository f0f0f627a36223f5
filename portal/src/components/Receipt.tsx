// A receipt after an action: what the page itself verified about the entry the member signed —
// and, as they come, the witnesses' cosignatures and the chain anchor that cover it, each
// checked here: the cosignatures with the witnesses' keys, the anchored root through a
// consistency proof from the receipt's checkpoint.
import { useEffect, useState } from "preact/hooks";
import { formatNumber, t } from "../i18n";
import type { CheckedReceipt } from "../entries";
import { call, RpcError, subscribe, type CheckpointInfo } from "../rpc";
import { run } from "../verifier";

interface Anchor {
  chainId: number;
  blockNumber: number;
  txHash: string;
  size: number;
  root: string;
}

interface Witnessed {
  names: string[];
  size: number;
}

/** Whether the tree of `size2` with `root2` extends the receipt's checkpoint. */
async function extendsReceipt(from: CheckpointInfo, size2: number, root2: string): Promise<boolean> {
  if (size2 === from.size) return root2 === from.root;
  const p = await call<{ hashes: string[] }>("ledger_consistencyProof", { fromSize: from.size, toSize: size2 });
  const a = await run({ op: "consistency", size1: from.size, size2, proof: p.hashes, root1: from.root, root2 });
  return a.valid === true;
}

async function witnessed(from: CheckpointInfo, vkey: string): Promise<Witnessed | undefined> {
  const keys = await call<string[]>("ledger_witnesses");
  if (keys.length === 0) return undefined;
  let c: CheckpointInfo;
  try {
    c = await call<CheckpointInfo>("ledger_cosignedCheckpoint");
  } catch (e) {
    if (e instanceof RpcError && e.code === 2001) return undefined;
    throw e;
  }
  if (c.size < from.size) return undefined;
  const a = await run({ op: "cosigned", note: c.note, vkey, witnesses: keys });
  const names = (a.cosigned ?? []).map((x) => x.witness);
  if (!a.valid || names.length === 0) return undefined;
  if (!(await extendsReceipt(from, c.size, c.root))) throw new Error(t("receipt.forked", { size: formatNumber(c.size) }));
  return { names, size: c.size };
}

async function anchored(from: CheckpointInfo): Promise<Anchor | undefined> {
  const list = await call<Anchor[]>("anchor_list");
  const a = list.filter((x) => x.size >= from.size).sort((x, y) => x.size - y.size)[0];
  if (!a) return undefined;
  if (!(await extendsReceipt(from, a.size, a.root))) throw new Error(t("receipt.forked", { size: formatNumber(a.size) }));
  return a;
}

export function Receipt({ receipt }: { receipt: CheckedReceipt }) {
  const r = receipt.result;
  const vkey = receipt.vkey;
  const [w, setW] = useState<Witnessed>();
  const [a, setA] = useState<Anchor>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    let stopped = false;
    const update = async () => {
      try {
        const [nw, na] = await Promise.all([witnessed(r.checkpoint, vkey), anchored(r.checkpoint)]);
        if (stopped) return;
        if (nw) setW(nw);
        if (na) setA(na);
      } catch (e) {
        if (!stopped) setProblem(String(e instanceof Error ? e.message : e));
      }
    };
    void update();
    // Cosignatures and anchors arrive after the receipt: look again at each new checkpoint.
    const stop = subscribe("ledger_subscribeCheckpoints", () => void update());
    return () => {
      stopped = true;
      stop();
    };
  }, [r.leafHash, vkey]);
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
      {w && (
        <p data-testid="receipt-witnessed">
          {t("receipt.witnessed", { n: formatNumber(w.names.length), names: w.names.join(", "), size: formatNumber(w.size) })}
        </p>
      )}
      {a && (
        <p data-testid="receipt-anchored">
          {t("receipt.anchored", { block: formatNumber(a.blockNumber), chain: String(a.chainId), size: formatNumber(a.size) })}
        </p>
      )}
      {!w && !a && <p class="hint">{t("receipt.notYet")}</p>}
      {problem && <p role="alert" data-testid="receipt-problem">{problem}</p>}
      <p class="hint">{t("receipt.checked")}</p>
    </section>
  );
}
