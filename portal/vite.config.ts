// The portal's build: one hashed script and one stylesheet in dist/, no inline script (the node
// serves it under a Content-Security-Policy without 'unsafe-inline'), the verifier's WebAssembly
// copied from public/ as is.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
