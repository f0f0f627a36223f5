// A secret vote from the browser, the same protocol as `coop vote` (governance::ballot, RFC 9497
// tokens): a one-time key made here is the token; the verifier's WebAssembly blinds it; the
// member's device key signs the participation (no vote in it); the node's answer is unblinded —
// its proof checked against the class key published in the log — into the credential; the
// one-time key signs the ballot, stamped with the opening time; the box's receipt is checked
// against the node key named in the co-op record before it is shown.
import { submit, type CheckedReceipt } from "./entries";
import { b64, concat, unb64 } from "./keys";
import { call } from "./rpc";
import type { Session } from "./session";
import { run } from "./verifier";

interface SecretView {
  id: string;
  opensMs: number;
  secret?: { keys: Record<string, string>; keysIndex?: number; protocol?: number };
}

interface BallotToken {
  protocol: number;
  class: string;
  key: string;
  blinded: string;
  evaluated: string;
  challenge: string;
  response: string;
}

export interface BallotReceipt {
  origin: string;
  proposal: string;
  ballot: string;
  nodeKey: string;
  signature: string;
}

export interface SecretVote {
  participation: CheckedReceipt;
  receipt: BallotReceipt;
}

const CONTEXT = new TextEncoder().encode("coopledger/v1/entry\0");
const RECEIPT = new TextEncoder().encode("coopledger/ballot-receipt\0");

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(s: string): Uint8Array {
  return new Uint8Array((s.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}


/** What a ballot says: `{vote: "yes" | "no" | "abstain"}` on a yes-no proposal, `{choices:
 * [indexes]}` on a choice proposal (one for single choice, a set for approval, a ranking for
 * ranked choice; none to abstain). */
export type BallotContent = { vote: "yes" | "no" | "abstain" } | { choices: number[] };

/** Casts `content` secretly on proposal `id`. */
export async function voteSecretly(s: Session, id: string, content: BallotContent): Promise<SecretVote> {
  if (!s.device || !s.key) throw new Error("this device's key is not a member's");
  const p = await call<SecretView>("gov_proposal", [id]);
  const secret = p.secret;
  if (!secret?.keysIndex) throw new Error("the node has not published this proposal's ballot keys yet");
  const protocol = secret.protocol ?? 1;
  const oneTime = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"])) as CryptoKeyPair;
  const token = new Uint8Array(await crypto.subtle.exportKey("raw", oneTime.publicKey));
  const blind = await run({ op: "ballotBlind", protocol, proposal: id, token: b64(token) });
  const { blinded, state } = blind;
  if (!blinded || !state) throw new Error(blind.cause ?? blind.error ?? "cannot blind");
  const participation = await submit(
    s.device,
    s.coop.origin,
    "gov.vote",
    { proposal: id, member: s.key.member, blinded },
    s.vkey,
  );
  const answer = await call<BallotToken>("gov_ballotToken", [id, s.key.member]);
  // The key must be the one published in the log for the class, or the node could tell this
  // voter's ballot apart from everyone else's.
  if (answer.protocol !== protocol) throw new Error("the node answered under another token protocol: not casting");
  if (secret.keys[answer.class] !== answer.key) throw new Error("the node answered with a key other than the published one: not casting");
  const unblinded = await run({
    op: "ballotUnblind",
    protocol,
    proposal: id,
    token: b64(token),
    state,
    key: answer.key,
    evaluated: answer.evaluated,
    challenge: answer.challenge,
    response: answer.response,
  });
  const { credential } = unblinded;
  if (!credential) throw new Error(unblinded.cause ?? unblinded.error ?? "cannot unblind");

  const body = {
    coop: s.coop.origin,
    type: "gov.ballot",
    v: 1,
    signer: b64(token),
    seq: 1,
    // Every ballot carries the opening time: the log shows nothing of when it was cast.
    ts: p.opensMs,
    payload: { proposal: id, class: answer.class, credential, ...content },
  };
  const canonical = await run({ op: "canonical", value: body });
  if (canonical.canonical === undefined) throw new Error(canonical.cause ?? "cannot encode the ballot");
  const bodyBytes = new TextEncoder().encode(canonical.canonical);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, oneTime.privateKey, concat(CONTEXT, bodyBytes)));
  const receipt = await call<BallotReceipt>("gov_castBallot", [{ body, sig: b64(sig) }]);

  // The receipt: the node's signature over the ballot's id, by the node key of the co-op record.
  const ballotId = new Uint8Array(await crypto.subtle.digest("SHA-256", bodyBytes));
  if (receipt.ballot !== hex(ballotId)) throw new Error("the receipt names another ballot");
  if (receipt.nodeKey !== s.coop.nodeKey) throw new Error("the receipt is not signed by the co-op's node key");
  const message = concat(RECEIPT, new TextEncoder().encode(`${receipt.origin}\n`), unhex(receipt.proposal), ballotId);
  const check = await run({
    op: "signature",
    key: hex(unb64(receipt.nodeKey)),
    message: hex(message),
    signature: hex(unb64(receipt.signature)),
  });
  if (!check.valid) throw new Error("the receipt's signature does not verify");
  return { participation, receipt };
}
