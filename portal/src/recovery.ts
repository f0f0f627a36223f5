// Recovery: a backup key for a member, sealed here under a recovery code shown once — and, where
// the browser's passkeys offer the WebAuthn PRF extension, under a passkey too — and the way
// back in with the code or the passkey on a new device. The node keeps only the sealed key and a
// locator (both derived one-way); the code and the passkey's secret never leave this device.
//
// Code: 15 random bytes (120 bits), written as 24 Crockford base-32 characters in six groups of
// four. From the code's bytes, PBKDF2-HMAC-SHA256 (salt "coopledger/v1/recovery\0" ‖ origin,
// 100,000 iterations) derives 64 bytes: the first 32 are the locator the node files the kit
// under, the last 32 an AES-256-GCM key. Kit: 12-byte nonce ‖ AES-GCM(PKCS #8 of the backup
// key), with associated data "coopledger/v1/recovery-kit\0" ‖ origin ‖ 0x00 ‖ member ‖ 0x00 ‖
// the backup key's 32-byte public key, so a kit opens only as the key of that member of that
// co-op.
//
// Passkey: a discoverable credential for this site, asked for its PRF output on the salt
// SHA-256("coopledger/v1/passkey-prf\0" ‖ origin); HKDF-SHA256 of that output (salt
// "coopledger/v1/passkey-kit\0" ‖ origin, no info) gives the 64 bytes: locator ‖ AES-256-GCM
// key. The same backup key is sealed the same way and stored as a second kit (the same
// `member.key_add` sent again). A passkey synced to the new device opens it.
import { checkReceipt, keyProof, signEntry, type CheckedReceipt, type SubmitResult } from "./entries";
import { b64, concat, makeDeviceKey, unb64 } from "./keys";
import { t } from "./i18n";
import { call } from "./rpc";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_BYTES = 15;
const ITERATIONS = 100_000;
const enc = new TextEncoder();


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

interface Sealing {
  locator: string;
  seal: CryptoKey;
}

/** 64 derived bytes as a locator and an AES-256-GCM key. */
async function sealing(bits: Uint8Array): Promise<Sealing> {
  const seal = await crypto.subtle.importKey("raw", bits.slice(32), "AES-GCM", false, ["encrypt", "decrypt"]);
  return { locator: b64(bits.slice(0, 32)), seal };
}

async function derive(code: Uint8Array, origin: string): Promise<Sealing> {
  const base = await crypto.subtle.importKey("raw", new Uint8Array(code), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: concat(enc.encode("coopledger/v1/recovery\0"), enc.encode(origin)), iterations: ITERATIONS },
    base,
    512,
  );
  return sealing(new Uint8Array(bits));
}

async function prfSalt(origin: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(enc.encode("coopledger/v1/passkey-prf\0"), enc.encode(origin))));
}

async function fromPrf(output: ArrayBuffer, origin: string): Promise<Sealing> {
  const base = await crypto.subtle.importKey("raw", output, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: concat(enc.encode("coopledger/v1/passkey-kit\0"), enc.encode(origin)), info: new Uint8Array() },
    base,
    512,
  );
  return sealing(new Uint8Array(bits));
}

type PrfResults = { prf?: { enabled?: boolean; results?: { first?: ArrayBuffer } } };

/** Whether passkeys can be used here: the browser has WebAuthn, and the portal is reached by
 * a domain name (WebAuthn refuses IP addresses: open it at localhost or the co-op's name).
 * PRF support itself shows only when a passkey is made. */
export function passkeysOffered(): boolean {
  const ip = /^[0-9.]+$/.test(location.hostname) || location.hostname.includes(":") || location.hostname.startsWith("[");
  return typeof window.PublicKeyCredential === "function" && !ip;
}

/** Makes a passkey for `member` on this site and returns its PRF output on the co-op's salt. */
async function passkeyPrf(origin: string, member: string, coopName: string): Promise<ArrayBuffer> {
  const salt = await prfSalt(origin);
  const created = (await navigator.credentials.create({
    publicKey: {
      rp: { name: coopName, id: location.hostname },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name: member, displayName: `${member} · ${coopName}` },
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      pubKeyCredParams: [{ type: "public-key", alg: -8 }, { type: "public-key", alg: -7 }],
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
      extensions: { prf: { eval: { first: salt } } } as AuthenticationExtensionsClientInputs,
    },
  })) as PublicKeyCredential | null;
  if (!created) throw new Error(t("recovery.noPasskey"));
  const made = created.getClientExtensionResults() as PrfResults;
  if (made.prf?.results?.first) return made.prf.results.first;
  if (!made.prf?.enabled) throw new Error(t("recovery.noPrf"));
  // Some authenticators give the PRF output only when the credential is used.
  return usePasskey(origin, [created.rawId]);
}

/** Asks a passkey of this site (any, or one of `ids`) for its PRF output on the co-op's salt. */
async function usePasskey(origin: string, ids: ArrayBuffer[] = []): Promise<ArrayBuffer> {
  const got = (await navigator.credentials.get({
    publicKey: {
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      rpId: location.hostname,
      userVerification: "required",
      allowCredentials: ids.map((id) => ({ type: "public-key" as const, id })),
      extensions: { prf: { eval: { first: await prfSalt(origin) } } } as AuthenticationExtensionsClientInputs,
    },
  })) as PublicKeyCredential | null;
  const out = (got?.getClientExtensionResults() as PrfResults | undefined)?.prf?.results?.first;
  if (!out) throw new Error(t("recovery.noPrf"));
  return out;
}

function kitData(origin: string, member: string, key: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat(enc.encode("coopledger/v1/recovery-kit\0"), enc.encode(origin), new Uint8Array([0]), enc.encode(member), new Uint8Array([0]), key);
}

/** Seals `pkcs8` under `sealing` for `member`'s backup key `pub`: nonce ‖ AES-GCM. */
async function sealKit(k: Sealing, origin: string, member: string, pub: Uint8Array, pkcs8: Uint8Array): Promise<string> {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: kitData(origin, member, pub) }, k.seal, new Uint8Array(pkcs8)),
  );
  return b64(concat(nonce, sealed));
}

/** Makes a backup key for `member`, registers it (signed by `device`) with its kit sealed under
 * a new recovery code — and, if asked, under a new passkey too; returns the code, to show
 * once, and the checked receipt. */
export async function makeRecoveryCode(
  device: { privateKey: CryptoKey; publicKey: Uint8Array },
  origin: string,
  member: string,
  vkey: string,
  passkey?: { coopName: string },
): Promise<{ code: string; receipt: CheckedReceipt; passkey: boolean; passkeyAsked: boolean }> {
  const code = crypto.getRandomValues(new Uint8Array(CODE_BYTES));
  const byCode = await derive(code, origin);
  // Extractable for this moment only: its PKCS #8 is sealed and the key object dropped.
  const backup = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", backup.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", backup.privateKey));
  // The passkey first: if the member cancels it, nothing has been registered yet.
  const byPasskey = passkey ? await fromPrf(await passkeyPrf(origin, member, passkey.coopName), origin) : undefined;
  const proof = await keyProof(backup.privateKey, origin, member);
  const envelope = await signEntry(device, origin, "member.key_add", { key: b64(pub), proof, label: "recovery" });
  const result = await call<SubmitResult>("recovery_store", [envelope, byCode.locator, await sealKit(byCode, origin, member, pub, pkcs8)]);
  // The same entry again (the log answers it with the same receipt): a second kit. If that
  // fails, the code still opens the first kit: show the code, say the passkey was not kept.
  let passkeyKept = false;
  if (byPasskey) {
    try {
      await call<SubmitResult>("recovery_store", [envelope, byPasskey.locator, await sealKit(byPasskey, origin, member, pub, pkcs8)]);
      passkeyKept = true;
    } catch {
      passkeyKept = false;
    }
  }
  return { code: encode(code), receipt: { result, signers: await checkReceipt(envelope, result, vkey), vkey }, passkey: passkeyKept, passkeyAsked: !!byPasskey };
}

interface Kit {
  member: string;
  key: string;
  kit: string;
  index: number;
}

/** Opens the kit under `k` and adds this device's key (made here if need be) to its member,
 * signed by the backup key. */
async function comeBack(k: Sealing, origin: string, vkey: string, label: string): Promise<{ member: string; receipt: CheckedReceipt }> {
  const kit = await call<Kit>("recovery_kit", [k.locator]);
  const bytes = unb64(kit.kit);
  let pkcs8: ArrayBuffer;
  try {
    pkcs8 = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: kitData(origin, kit.member, unb64(kit.key)) },
      k.seal,
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

/** Comes back with the recovery code typed in. */
export async function recoverWithCode(
  text: string,
  origin: string,
  vkey: string,
  label: string,
): Promise<{ member: string; receipt: CheckedReceipt }> {
  const code = parseCode(text);
  if (!code) throw new Error(t("recovery.badCode"));
  return comeBack(await derive(code, origin), origin, vkey, label);
}

/** Comes back with a passkey of this site (synced to this device, or kept on it). */
export async function recoverWithPasskey(origin: string, vkey: string, label: string): Promise<{ member: string; receipt: CheckedReceipt }> {
  return comeBack(await fromPrf(await usePasskey(origin), origin), origin, vkey, label);
}
