// After `vite build`: a gzip copy (level 9) of every text and WebAssembly file in dist/, which
// the node serves with `Content-Encoding: gzip` to browsers that accept it.
import { gzipSync, constants } from "node:zlib";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

for (const file of walk("dist")) {
  if (!/\.(html|js|css|wasm|json|svg)$/.test(file)) continue;
  const raw = readFileSync(file);
  const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  if (gz.length < raw.length) writeFileSync(`${file}.gz`, gz);
}
