// JSON-RPC to the node that served this page: calls over HTTP POST, subscriptions over a
// WebSocket on the same port. The portal talks to nothing else.

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

let nextId = 1;

export async function call<T>(method: string, params: unknown[] | Record<string, unknown> = []): Promise<T> {
  const res = await fetch("/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
  });
  if (!res.ok) throw new RpcError(res.status, `HTTP ${res.status}`);
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string; data?: unknown } };
  if (body.error) throw new RpcError(body.error.code, body.error.message, body.error.data);
  return body.result as T;
}

/** Subscribes with `method`; `onItem` gets each notification's result. Reconnects after a drop
 * (with a growing pause); returns a function that stops it. */
export function subscribe<T>(method: string, onItem: (item: T) => void): () => void {
  let ws: WebSocket | undefined;
  let stopped = false;
  let pause = 500;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/`);
    ws.onopen = () => {
      pause = 500;
      ws?.send(JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params: [] }));
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as { params?: { result?: T } };
      if (msg.params?.result !== undefined) onItem(msg.params.result);
    };
    ws.onclose = () => {
      if (!stopped) setTimeout(open, (pause = Math.min(pause * 2, 15000)));
    };
  };
  open();
  return () => {
    stopped = true;
    ws?.close();
  };
}

export interface CheckpointInfo {
  note: string;
  origin: string;
  size: number;
  root: string;
}

export interface CoopInfo {
  origin: string;
  name: string;
  nodeKey: string;
  genesisIndex: number;
  members: number;
  bylawsVersion: number;
  entryTypes: string[];
}

export interface ProposalSummary {
  id: string;
  index: number;
  kind: string;
  title: string;
  method: string;
  secret: boolean;
  opensMs: number;
  closesMs: number;
  status: { state: "open" | "withdrawn" | "closed" };
  outcome: string | null;
}
