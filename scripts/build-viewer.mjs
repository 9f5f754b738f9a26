// Builds the diagnostic viewer (docs/viewer.md) from static/viewer/src/ into static/viewer/dist/
// with esbuild's JS API: `node scripts/build-viewer.mjs` (the Makefile's viewer target).
//
// 1. ES-module entry points side by side: the pages' apps (viewer.js, and compare.js for the
//    prior/current comparison) and the decode worker
//    of @cornerstonejs/dicom-image-loader. The loader's init() starts its worker with
//    `new Worker(new URL('./decodeImageFrameWorker.js', import.meta.url), {type: 'module'})`,
//    which esbuild leaves as is: in the bundled viewer.js, import.meta.url is
//    /static/viewer/dist/viewer.js, so the worker must be dist/decodeImageFrameWorker.js.
// 2. The emscripten codecs `require("fs")`/`require("path")` on their Node code path, never
//    taken in a browser: those (and "url") resolve to an empty module.
// 3. The codecs' .wasm files are copied into dist/ under the names the loader asks for; the
//    app passes wasmBasePath=/static/viewer/dist/ so the worker fetches them there.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "static/viewer/src");
const dist = join(root, "static/viewer/dist");
const modules = join(root, "node_modules");
const empty = join(src, "empty-shim.js");

// The names dicom-image-loader's decoders resolve against wasmBasePath (shared/decoders/*.js).
const WASM = {
  "charlswasm_decode.wasm": "@cornerstonejs/codec-charls/dist/charlswasm_decode.wasm",
  "libjpegturbowasm_decode.wasm":
    "@cornerstonejs/codec-libjpeg-turbo-8bit/dist/libjpegturbowasm_decode.wasm",
  "openjpegwasm_decode.wasm": "@cornerstonejs/codec-openjpeg/dist/openjpegwasm_decode.wasm",
  "openjphjs.wasm": "@cornerstonejs/codec-openjph/dist/openjphjs.wasm",
  "jpegxlwasm_decode.wasm": "@cornerstonejs/codec-libjxl/dist/jpegxlwasm_decode.wasm",
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: {
    boot: join(src, "boot.js"),
    viewer: join(src, "viewer.js"),
    compare: join(src, "compare.js"),
    decodeImageFrameWorker: join(
      modules,
      "@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js",
    ),
  },
  outdir: dist,
  bundle: true,
  format: "esm",
  splitting: false,
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  // VIEWER_DEV=1: readable bundles with source maps, for debugging in the browser.
  minify: !process.env.VIEWER_DEV,
  sourcemap: process.env.VIEWER_DEV ? "linked" : false,
  legalComments: "linked",
  alias: { fs: empty, path: empty, url: empty, events: join(modules, "events/events.js") },
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});

for (const [name, from] of Object.entries(WASM)) {
  copyFileSync(join(modules, from), join(dist, name));
}
console.log(`viewer built into ${dist}`);
