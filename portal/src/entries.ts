// Entries made in the browser: the body is built here, made canonical by the ledger's own codec
// (the verifier's `canonical`, so the bytes are the node's), signed with WebCrypto Ed25519 over
// "coopledger/v1/entry" ‖ 0x00 ‖ canonical(body), and submitted with `ledger_submit`. The
// receipt is checked here before it is shown: the checkpoint's signature under the co-op's
// verifier key, the leaf hash of the envelope, and the inclusion proof.
import { b64 } from "./keys";
import { call, type CheckpointInfo } from "./rpc";
import { run } from "./verifier";

export interface Signer {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
}

export interface SubmitResult {
  index: number;
  leafHash: string;
  entryId: string;
  checkpoint: CheckpointInfo;
  inclusionProof: { index: number; treeSize: number; hashes: string[] };
  duplicate: boolean;
}

/** A receipt checked in the page. */
export interface CheckedReceipt {
  result: SubmitResult;
  /** Names of the signatures the checkpoint carries that verified (the co-op's). */
  signers: string[];
  /** The co-op's verifier key it was checked with. */
  vkey: string;
}

const CONTEXT = new TextEncoder().encode("coopledger/v1/entry\0");

async function canonical(value: unknown): Promise<string> {
  const a = await run({ op: "canonical", value });
  if (a.canonical === undefined) throw new Error(a.cause ?? a.error ?? "cannot encode");
  return a.canonical;
}

export interface Envelope {
  body: { coop: string; type: string; v: number; signer: string; seq: number; ts: number; payload: Record<string, unknown> };
  sig: string;
}

/** Signs `payload` as the next entry of `type` by `signer` for co-op `coop`, at `ts` (now by
 * default). */
export async function signEntry(
  signer: Signer,
  coop: string,
  type: string,
  payload: Record<string, unknown>,
  ts: number = Date.now(),
): Promise<Envelope> {
  const key = b64(signer.publicKey);
  const seq = await call<number>("ledger_nextSeq", [key]);
  const body = { coop, type, v: 1, signer: key, seq, ts, payload };
  const bodyText = await canonical(body);
  const bodyBytes = new TextEncoder().encode(bodyText);
  const message = new Uint8Array(CONTEXT.length + bodyBytes.length);
  message.set(CONTEXT);
  message.set(bodyBytes, CONTEXT.length);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer.privateKey, message));
  return { body, sig: b64(sig) };
}

/** Signs `payload` as an entry of `type` for co-op `coop` and submits it; returns the checked
 * receipt. `vkey` is the co-op's verifier key the page trusts. */
export async function submit(
  signer: Signer,
  coop: string,
  type: string,
  payload: Record<string, unknown>,
  vkey: string,
  ts?: number,
): Promise<CheckedReceipt> {
  const envelope = await signEntry(signer, coop, type, payload, ts);
  const result = await call<SubmitResult>("ledger_submit", [envelope]);
  return { result, signers: await checkReceipt(envelope, result, vkey), vkey };
}

const KEY_ADD = new TextEncoder().encode("coopledger/key-add\0");

/** What a new key signs to prove it belongs to `member` of `coop` (key add and key reset). */
export function keyAddMessage(coop: string, member: string): Uint8Array<ArrayBuffer> {
  const c = new TextEncoder().encode(coop);
  const m = new TextEncoder().encode(member);
  const out = new Uint8Array(KEY_ADD.length + c.length + 1 + m.length);
  out.set(KEY_ADD);
  out.set(c, KEY_ADD.length);
  out.set(m, KEY_ADD.length + c.length + 1);
  return out;
}

/** `key`'s proof of possession for `member` of `coop`, base64. */
export async function keyProof(key: CryptoKey, coop: string, member: string): Promise<string> {
  return b64(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, keyAddMessage(coop, member))));
}

/** Checks a receipt against the envelope that was sent; returns the checkpoint's verified
 * signers, or throws saying what failed. */
export async function checkReceipt(envelope: unknown, r: SubmitResult, vkey: string): Promise<string[]> {
  const note = await run({ op: "note", note: r.checkpoint.note, vkey });
  if (!note.valid) throw new Error(`checkpoint: ${note.cause ?? note.error}`);
  const bytes = new TextEncoder().encode(await canonical(envelope));
  const leaf = new Uint8Array(bytes.length + 1);
  leaf.set(bytes, 1);
  const leafHash = b64(new Uint8Array(await crypto.subtle.digest("SHA-256", leaf)));
  if (leafHash !== r.leafHash) throw new Error("the receipt's leaf hash is not this entry's");
  const proof = await run({
    op: "inclusion",
    leafHash,
    index: r.inclusionProof.index,
    size: r.inclusionProof.treeSize,
    proof: r.inclusionProof.hashes,
    root: r.checkpoint.root,
  });
  if (!proof.valid) throw new Error(`inclusion: ${proof.cause ?? proof.error}`);
  if (r.inclusionProof.treeSize !== r.checkpoint.size) throw new Error("the proof is for another checkpoint");
  return note.signers ?? [];
}
