// What `fs`, `path` and `url` resolve to in the browser bundle: the emscripten codecs only
// touch them on their Node code path (scripts/build-viewer.mjs).
export default {};
