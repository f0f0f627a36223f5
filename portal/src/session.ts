// What the page knows about the co-op and about this device's member, fetched once per page:
// the co-op's origin and verifier key (remembered in this tab's memory on first use; a
// different key on a later page is an error), this device's key and, if the co-op knows it,
// the member it belongs to.
import { deviceKey, b64, type DeviceKey } from "./keys";
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

export async function session(): Promise<Session> {
  const [coop, vkey, device] = await Promise.all([
    call<CoopInfo>("gov_info"),
    call<string>("ledger_verifierKey"),
    deviceKey(),
  ]);
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
