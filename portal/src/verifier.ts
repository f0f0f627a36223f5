// The portal's verifier: the ledger's own Rust checks (`verifier/`, `coop-verify`) compiled to
// WebAssembly for wasm32-wasip1, run here as a command with one JSON request on stdin and one
// JSON answer on stdout. The WASI surface it imports is seven functions; this file provides
// them and nothing else (no files, no clock, no network).

export type Request =
  | { op: "bundle"; text: string; vkey: string }
  | { op: "signature"; key: string; message: string; signature: string }
  | { op: "inclusion"; leafHash: string; index: number; size: number; proof: string[]; root: string }
  | { op: "consistency"; size1: number; size2: number; proof: string[]; root1: string; root2: string }
  | { op: "note"; note: string; vkey: string }
  | { op: "cosigned"; note: string; vkey: string; witnesses: string[] }
  | { op: "canonical"; value: unknown }
  | { op: "ballotBlind"; protocol: number; proposal: string; token: string }
  | {
      op: "ballotUnblind";
      protocol: number;
      proposal: string;
      token: string;
      state: string;
      key: string;
      evaluated: string;
      challenge: string;
      response: string;
    };

export interface Answer {
  valid?: boolean;
  kind?: string;
  headline?: string;
  cause?: string;
  signers?: string[];
  canonical?: string;
  blinded?: string;
  state?: string;
  credential?: string;
  cosigned?: { witness: string; timestamp: number }[];
  reconciliation?: unknown;
  error?: string;
}

class Exit {
  constructor(readonly code: number) {}
}

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;

let module: Promise<WebAssembly.Module> | undefined;
let moduleBytes = 0;

/** Fetches and compiles the verifier once (it is ~1.3 MB, ~0.4 MB gzipped). */
export function load(url = "/verifier.wasm"): Promise<WebAssembly.Module> {
  module ??= fetch(url).then(async (res) => {
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const bytes = await res.arrayBuffer();
    moduleBytes = bytes.byteLength;
    return WebAssembly.compile(bytes);
  });
  return module;
}

export function size(): number {
  return moduleBytes;
}

/** Runs one request through a fresh instance of the verifier. A request given as JSON text is
 * passed on as is: JavaScript numbers cannot hold every u64 (a tree size or index above 2^53),
 * the text can. */
export async function run(request: Request | string): Promise<Answer> {
  const compiled = await load();
  const stdin = new TextEncoder().encode(typeof request === "string" ? request : JSON.stringify(request));
  let stdinAt = 0;
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  let memory: WebAssembly.Memory | undefined;
  const view = () => new DataView(memory!.buffer);
  const bytes = () => new Uint8Array(memory!.buffer);

  const wasi = {
    random_get(buf: number, len: number): number {
      // getRandomValues fills at most 65,536 bytes a call.
      for (let at = 0; at < len; at += 65536) {
        crypto.getRandomValues(bytes().subarray(buf + at, buf + Math.min(len, at + 65536)));
      }
      return ERRNO_SUCCESS;
    },
    environ_sizes_get(count: number, size: number): number {
      view().setUint32(count, 0, true);
      view().setUint32(size, 0, true);
      return ERRNO_SUCCESS;
    },
    environ_get(): number {
      return ERRNO_SUCCESS;
    },
    fd_read(fd: number, iovs: number, iovsLen: number, nread: number): number {
      if (fd !== 0) return ERRNO_BADF;
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view().getUint32(iovs + i * 8, true);
        const len = view().getUint32(iovs + i * 8 + 4, true);
        const chunk = stdin.subarray(stdinAt, stdinAt + len);
        bytes().set(chunk, ptr);
        stdinAt += chunk.length;
        total += chunk.length;
        if (chunk.length < len) break;
      }
      view().setUint32(nread, total, true);
      return ERRNO_SUCCESS;
    },
    fd_write(fd: number, iovs: number, iovsLen: number, nwritten: number): number {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view().getUint32(iovs + i * 8, true);
        const len = view().getUint32(iovs + i * 8 + 4, true);
        (fd === 1 ? stdout : stderr).push(bytes().slice(ptr, ptr + len));
        total += len;
      }
      view().setUint32(nwritten, total, true);
      return ERRNO_SUCCESS;
    },
    proc_exit(code: number): never {
      throw new Exit(code);
    },
    sched_yield(): number {
      return ERRNO_SUCCESS;
    },
  };
  const instance = await WebAssembly.instantiate(compiled, { wasi_snapshot_preview1: wasi });
  memory = instance.exports.memory as WebAssembly.Memory;
  try {
    (instance.exports._start as () => void)();
  } catch (e) {
    if (!(e instanceof Exit)) {
      return { error: `the verifier stopped: ${String(e)} ${decode(stderr)}`.trim() };
    }
  }
  const text = decode(stdout).trim();
  try {
    return JSON.parse(text) as Answer;
  } catch {
    return { error: `the verifier answered no JSON: ${text.slice(0, 200)} ${decode(stderr)}`.trim() };
  }
}

function decode(parts: Uint8Array[]): string {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder().decode(all);
}
