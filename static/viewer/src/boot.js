// The viewer page's first script (docs/viewer.md, "First pixel at once"). The server's
// preview <img> is in the HTML; this waits until it is painted before fetching the viewer
// bundle (4 MB, over a second to compile), so that the two don't compete for the server,
// the connection and the main thread. Then the opened series' metadata is fetched at once,
// while the bundle downloads and compiles, and handed to it (dicom.js loadSeriesMetadata).
const PREVIEW_WAIT_MS = 1500; // a preview that never loads must not hold the viewer back

function previewPainted() {
  const preview = document.getElementById("preview");
  if (!preview || (preview.complete && preview.naturalWidth)) return Promise.resolve();
  return new Promise((resolve) => {
    preview.addEventListener("load", resolve, { once: true });
    preview.addEventListener("error", resolve, { once: true });
    setTimeout(resolve, PREVIEW_WAIT_MS);
  }).then(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
}

function prefetchMetadata() {
  const config = JSON.parse(document.getElementById("viewer-config").textContent);
  const opened = config.series.find((s) => s.uid === config.open.series) || config.series[0];
  if (!opened) return;
  const url = `${config.dicomweb}studies/${config.study}/series/${opened.uid}/metadata`;
  const response = fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/dicom+json" },
  });
  response.catch(() => {}); // the viewer fetches again, and reports the error
  globalThis.nexrelPrefetched = { url, response };
}

await previewPainted();
prefetchMetadata();
// A computed URL, so that esbuild leaves the bundle out of this one.
await import(new URL("viewer.js", import.meta.url).href);
