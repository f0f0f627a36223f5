// What the page knows about the co-op and about this device's member, fetched once per page:
// the co-op's origin and verifier key (remembered in this tab's memory on first use; a
// different key on a later page is an error; a key the member pinned in this browser from the
// co-op's published key outranks the node), this device's key and, if the co-op knows it, the
// member it belongs to.
import { deviceKey, b64, type DeviceKey } from "./keys";
import { t } from "./i18n";
import { call, RpcError, type CoopInfo } from "./rpc";

export interface KeyInfo {
  member: string;
  since: number;
  revoked?: number;
  label?: string;
}

export interface Session {
  coop: CoopInfo;
  vkey: string;
  device?: DeviceKey;
  /** This device's key as the co-op knows it (absent: not a member's key, or not yet). */
  key?: KeyInfo;
}

let pinned: string | undefined;

const PIN = "coopledger.vkey";

/** The verifier key pinned in this browser (public: kept in localStorage), if any. */
export function pinnedKey(): string | undefined {
  return localStorage.getItem(PIN) ?? undefined;
}

/** Pins `vkey` in this browser (public data, never key material); undefined forgets it. */
export function pinKey(vkey: string | undefined): void {
  if (vkey === undefined) localStorage.removeItem(PIN);
  else localStorage.setItem(PIN, vkey);
}

export async function session(): Promise<Session> {
  const [coop, vkey, device] = await Promise.all([
    call<CoopInfo>("gov_info"),
    call<string>("ledger_verifierKey"),
    deviceKey(),
  ]);
  // A key pinned in this browser (from the co-op's published key) outranks what any node says.
  const kept = pinnedKey();
  if (kept !== undefined && kept !== vkey) throw new Error(t("pin.mismatch", { pinned: kept, served: vkey }));
  if (pinned !== undefined && pinned !== vkey) {
    throw new Error(`the node's verifier key changed from ${pinned} to ${vkey}`);
  }
  pinned = vkey;
  let key: KeyInfo | undefined;
  if (device) {
    try {
      key = await call<KeyInfo>("gov_key", [b64(device.publicKey)]);
    } catch (e) {
      // 2001 NOT_FOUND: the co-op does not know this key (yet).
      if (!(e instanceof RpcError && e.code === 2001)) throw e;
    }
  }
  return { coop, vkey, device, key };
}
