// This device's key: a WebCrypto Ed25519 key pair made here, the private half non-extractable,
// kept in IndexedDB (never localStorage). Key files from the CLI can be imported for one
// signature (to admit from the board's key, or to add this device to an existing member) and
// are not stored.

const DB = "coopledger";
const STORE = "keys";

export interface DeviceKey {
  privateKey: CryptoKey;
  /** Raw 32-byte public key. */
  publicKey: Uint8Array;
  created: number;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = f(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}

export function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function unb64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The bytes of `parts`, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** This device's key, if it has one. */
export async function deviceKey(): Promise<DeviceKey | undefined> {
  return (await withStore("readonly", (s) => s.get("device"))) as DeviceKey | undefined;
}

/** Makes this device's key (once). */
export async function makeDeviceKey(): Promise<DeviceKey> {
  const existing = await deviceKey();
  if (existing) return existing;
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const key: DeviceKey = { privateKey: pair.privateKey, publicKey, created: Date.now() };
  await withStore("readwrite", (s) => s.put(key, "device"));
  return key;
}

/** Forgets this device's key (the member should revoke it on the ledger first). */
export async function forgetDeviceKey(): Promise<void> {
  await withStore("readwrite", (s) => s.delete("device"));
}

/** A short fingerprint of a public key: the first 8 bytes in hex, in pairs. */
export async function fingerprint(publicKey: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(publicKey)));
  return Array.from(h.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** A key file of the `coop` CLI (`{"seed": base64, "public": base64, …}`), imported for
 * signing only, non-extractable; nothing of it is stored. */
export async function importKeyFile(text: string): Promise<{ privateKey: CryptoKey; publicKey: Uint8Array }> {
  const file = JSON.parse(text) as Record<string, unknown>;
  const seed = typeof file.seed === "string" ? unb64(file.seed) : undefined;
  const pub = typeof file.public === "string" ? unb64(file.public) : undefined;
  if (!seed || seed.length !== 32 || !pub || pub.length !== 32) throw new Error("not a coop key file");
  const url = (b: Uint8Array) => b64(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", d: url(seed), x: url(pub) },
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return { privateKey, publicKey: pub };
}
