// Recovery: a backup key for a member, sealed here under a recovery code shown once, and the
// way back in with that code on a new device. The node keeps only the sealed key and a locator
// (both derived from the code one-way); the code itself never leaves this page.
//
// Code: 15 random bytes (120 bits), written as 24 Crockford base-32 characters in six groups of
// four. From the code's bytes, PBKDF2-HMAC-SHA256 (salt "coopledger/v1/recovery\0" ‖ origin,
// 100,000 iterations) derives 64 bytes: the first 32 are the locator the node files the kit
// under, the last 32 an AES-256-GCM key. Kit: 12-byte nonce ‖ AES-GCM(PKCS #8 of the backup
// key), with associated data "coopledger/v1/recovery-kit\0" ‖ origin ‖ 0x00 ‖ member ‖ 0x00 ‖
// the backup key's 32-byte public key, so a kit opens only as the key of that member of that
// co-op.
import { checkReceipt, keyProof, signEntry, type CheckedReceipt, type SubmitResult } from "./entries";
import { b64, makeDeviceKey, unb64 } from "./keys";
import { t } from "./i18n";
import { call } from "./rpc";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_BYTES = 15;
const ITERATIONS = 100_000;
const enc = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** 15 bytes as 24 characters, grouped by four. */
function encode(bytes: Uint8Array): string {
  let bits = 0;
  let acc = 0;
  let out = "";
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join("-");
}

/** A typed code back to its bytes (case, spaces and dashes ignored; O read as 0, I and L as 1);
 * undefined if it is not a code. */
export function parseCode(text: string): Uint8Array | undefined {
  const clean = text.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  if (clean.length !== (CODE_BYTES * 8) / 5) return undefined;
  const out = new Uint8Array(CODE_BYTES);
  let bits = 0;
  let acc = 0;
  let at = 0;
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 255;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

async function derive(code: Uint8Array, origin: string): Promise<{ locator: string; seal: CryptoKey }> {
  const base = await crypto.subtle.importKey("raw", new Uint8Array(code), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: concat(enc.encode("coopledger/v1/recovery\0"), enc.encode(origin)), iterations: ITERATIONS },
      base,
      512,
    ),
  );
  const seal = await crypto.subtle.importKey("raw", bits.slice(32), "AES-GCM", false, ["encrypt", "decrypt"]);
  return { locator: b64(bits.slice(0, 32)), seal };
}

function kitData(origin: string, member: string, key: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat(enc.encode("coopledger/v1/recovery-kit\0"), enc.encode(origin), new Uint8Array([0]), enc.encode(member), new Uint8Array([0]), key);
}

/** Makes a backup key for `member`, registers it (signed by `device`) with its kit sealed under
 * a new recovery code; returns the code, to show once, and the checked receipt. */
export async function makeRecoveryCode(
  device: { privateKey: CryptoKey; publicKey: Uint8Array },
  origin: string,
  member: string,
  vkey: string,
): Promise<{ code: string; receipt: CheckedReceipt }> {
  const code = crypto.getRandomValues(new Uint8Array(CODE_BYTES));
  const { locator, seal } = await derive(code, origin);
  // Extractable for this moment only: its PKCS #8 is sealed and the key object dropped.
  const backup = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", backup.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", backup.privateKey));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: kitData(origin, member, pub) }, seal, pkcs8),
  );
  const proof = await keyProof(backup.privateKey, origin, member);
  const envelope = await signEntry(device, origin, "member.key_add", { key: b64(pub), proof, label: "recovery" });
  const result = await call<SubmitResult>("recovery_store", [envelope, locator, b64(concat(nonce, sealed))]);
  return { code: encode(code), receipt: { result, signers: await checkReceipt(envelope, result, vkey), vkey } };
}

interface Kit {
  member: string;
  key: string;
  kit: string;
  index: number;
}

/** Opens the kit the code finds and adds this device's key (made here if need be) to its member,
 * signed by the backup key. */
export async function recoverWithCode(
  text: string,
  origin: string,
  vkey: string,
  label: string,
): Promise<{ member: string; receipt: CheckedReceipt }> {
  const code = parseCode(text);
  if (!code) throw new Error(t("recovery.badCode"));
  const { locator, seal } = await derive(code, origin);
  const kit = await call<Kit>("recovery_kit", [locator]);
  const bytes = unb64(kit.kit);
  let pkcs8: ArrayBuffer;
  try {
    pkcs8 = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: kitData(origin, kit.member, unb64(kit.key)) },
      seal,
      bytes.slice(12),
    );
  } catch {
    throw new Error(t("recovery.sealed"));
  }
  const backup = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  const device = await makeDeviceKey();
  const payload: Record<string, unknown> = {
    key: b64(device.publicKey),
    proof: await keyProof(device.privateKey, origin, kit.member),
  };
  if (label.trim()) payload.label = label.trim();
  const signer = { privateKey: backup, publicKey: unb64(kit.key) };
  const envelope = await signEntry(signer, origin, "member.key_add", payload);
  const result = await call<SubmitResult>("ledger_submit", [envelope]);
  return { member: kit.member, receipt: { result, signers: await checkReceipt(envelope, result, vkey), vkey } };
}
