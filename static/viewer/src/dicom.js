// What the viewer reads of DICOMweb: the series' metadata (WADO-RS, DICOM JSON) registered
// with the wadors loader, the imageIds of its frames, and the calibration of an image.
import { wadors } from "@cornerstonejs/dicom-image-loader";

const tag = (instance, t) => instance?.[t]?.Value;
export const first = (instance, t) => tag(instance, t)?.[0];

export const UID = {
  sop: "00080018",
  frames: "00280008",
  instanceNumber: "00200013",
  pixelSpacing: "00280030",
  imagerPixelSpacing: "00181164",
  calibrationType: "00280A02",
  ermf: "00181114",
  modality: "00080060",
};

// Fetches the series' metadata and registers each instance with the wadors loader under
// the imageId of its first frame (its other frames are derived from it, per-frame groups
// included). Returns {sopUid: instanceJSON}.
export async function loadSeriesMetadata(config, studyUid, seriesUid) {
  const url = `${config.dicomweb}studies/${studyUid}/series/${seriesUid}/metadata`;
  const response = (await takePrefetched(url)) ||
    (await fetch(url, { credentials: "same-origin", headers: { Accept: "application/dicom+json" } }));
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const instances = {};
  for (const instance of await response.json()) {
    const sop = first(instance, UID.sop);
    // Modality is type 1, but files without it exist, and the wadors loader reads it
    // unguarded (its NM check): "OT", as the standard says for "other".
    if (!first(instance, UID.modality)) instance[UID.modality] = { vr: "CS", Value: ["OT"] };
    instances[sop] = instance;
    wadors.metaDataManager.add(frameImageId(config, studyUid, seriesUid, sop, 1), instance);
  }
  await Promise.all(Object.values(instances).map(readVoiLut));
  return instances;
}

// VOI LUT Sequence (0028,3010), PS3.3 C.11.2: its first LUT, which the wadors loader does
// not pass on. {first, entries, data} of an instance, else undefined (docs/viewer.md).
// LUT Data comes as Value (US), InlineBinary (little endian words, or bytes) or a
// BulkDataURI, answered as multipart/related with one application/octet-stream part;
// fetched here, with the metadata, because metadata providers and presets are synchronous.
const voiLuts = new WeakMap();
export const voiLutOf = (instance) => (instance ? voiLuts.get(instance) : undefined);

async function readVoiLut(instance) {
  const item = instance["00283010"]?.Value?.[0];
  const descriptor = item?.["00283002"]?.Value;
  const element = item?.["00283006"];
  if (!descriptor || !element) return;
  const entries = Number(descriptor[0]) || 65536;
  const firstValue = Number(descriptor[1]) || 0;
  let data;
  try {
    if (element.Value?.length) data = Float64Array.from(element.Value, Number);
    else {
      const bytes = element.InlineBinary
        ? Uint8Array.from(atob(element.InlineBinary), (c) => c.charCodeAt(0))
        : element.BulkDataURI ? await fetchBulkData(element.BulkDataURI) : null;
      if (!bytes) return;
      data = bytes.length >= entries * 2
        ? new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + entries * 2))
        : bytes.slice(0, entries);
    }
  } catch (error) {
    console.warn("VOI LUT Sequence not read:", error?.message || error);
    return;
  }
  if (data.length < 2) return;
  voiLuts.set(instance, { first: firstValue, entries: data.length, data });
}

async function fetchBulkData(uri) {
  const response = await fetch(uri, {
    credentials: "same-origin",
    headers: { Accept: 'multipart/related; type="application/octet-stream"' },
  });
  if (!response.ok) throw new Error(`${uri}: HTTP ${response.status}`);
  const body = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get("Content-Type") || "";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!type.toLowerCase().startsWith("multipart") || !boundary) return body;
  const find = (needle, from) => {
    const n = new TextEncoder().encode(needle);
    outer: for (let i = from; i <= body.length - n.length; i++) {
      for (let j = 0; j < n.length; j++) if (body[i + j] !== n[j]) continue outer;
      return i;
    }
    return -1;
  };
  const open = find(`--${boundary}`, 0);
  const start = find("\r\n\r\n", open) + 4;
  const end = find(`\r\n--${boundary}`, start);
  if (open < 0 || start < 4 || end < 0) throw new Error(`${uri}: not a multipart body`);
  return body.slice(start, end);
}

// The request boot.js made for `url` while the bundle loaded, once; or null.
function takePrefetched(url) {
  const prefetched = globalThis.nexrelPrefetched;
  if (!prefetched || prefetched.url !== url) return null;
  delete globalThis.nexrelPrefetched;
  return prefetched.response.catch(() => null); // a failed prefetch is fetched again
}

export function frameImageId(config, studyUid, seriesUid, sopUid, frame) {
  const base = new URL(config.dicomweb, window.location.href).href;
  return `wadors:${base}studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/frames/${frame}`;
}

// The image of an imageId: {sop, frame}.
export function parseImageId(imageId) {
  const match = /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(imageId);
  return match ? { sop: match[1], frame: Number(match[2]) } : null;
}

// How lengths on this image are calibrated, in words (docs/viewer.md):
// a manual calibration; else Pixel Spacing Calibration Type when the file gives one; "ERMF"
// when Imager Pixel Spacing is corrected by the Estimated Radiographic Magnification Factor;
// Pixel Spacing; Imager Pixel Spacing alone (the detector plane); else "uncalibrated".
export function calibrationLabel(instance, strings, manualMmPerPx) {
  if (manualMmPerPx) return strings.user_calibration.replace("%(mm)s", manualMmPerPx.toFixed(4));
  const ps = tag(instance, UID.pixelSpacing);
  const ips = tag(instance, UID.imagerPixelSpacing);
  const type = first(instance, UID.calibrationType);
  const ermf = Number(first(instance, UID.ermf) || 0);
  const mm = (v) => `${Number(v[0]).toFixed(3)} mm`;
  if (ps && type) return `${type} (${mm(ps)})`;
  if (ips && ermf > 1) return `ERMF ${ermf} (${mm(ips.map((v) => v / ermf))})`;
  if (ps) return `${strings.pixel_spacing} (${mm(ps)})`;
  if (ips) return `${strings.detector} (${mm(ips)})`;
  return strings.uncalibrated;
}

// The spacing in mm of a projection radiograph's pixels, [row, column], by the rule of
// calibrationLabel (Imager Pixel Spacing alone is the detector plane); null without one.
export function projectionSpacing(instance) {
  const ps = tag(instance, UID.pixelSpacing);
  if (ps) return ps.map(Number);
  const ips = tag(instance, UID.imagerPixelSpacing);
  if (!ips) return null;
  const ermf = Number(first(instance, UID.ermf) || 0);
  return ips.map((v) => Number(v) / (ermf > 1 ? ermf : 1));
}

// The wadors loader marks an image plane as "default values" when it has no Image
// Position/Orientation (Patient), which no radiograph has, and then Cornerstone measures
// in pixels even with a Pixel Spacing. This provider, ahead of the loader's, gives a
// radiograph's plane its spacing from the file (projectionSpacing) and keeps the defaults
// flag only for an image with no spacing at all.
export function registerProjectionPlaneProvider(metaData) {
  const loaderProvider = wadors.metaData.metaDataProvider;
  metaData.addProvider((type, imageId) => {
    if (type !== "imagePlaneModule" || typeof imageId !== "string" || !imageId.startsWith("wadors:")) {
      return undefined;
    }
    const instance = wadors.metaDataManager.get(imageId);
    const plane = loaderProvider(type, imageId);
    if (!instance || !plane || instance["00200037"] || instance["00200032"]) return plane;
    const spacing = projectionSpacing(instance);
    if (!spacing) return plane;
    return {
      ...plane,
      pixelSpacing: spacing,
      rowPixelSpacing: spacing[0],
      columnPixelSpacing: spacing[1],
      usingDefaultValues: false,
    };
  }, 10000);
}

const VOI_LUT_FUNCTIONS = ["LINEAR", "LINEAR_EXACT", "SIGMOID"];

// How the file asks to be displayed, where the loader gets it wrong (docs/viewer.md):
// - VOI LUT Function: the loader's VOI LUT module gives it as a string, and its image
//   takes the first element of it — "S" of "SIGMOID", which Cornerstone refuses ("Invalid
//   VOI LUT function", nothing drawn). This module gives it as the one-element list the
//   loader expects, and LINEAR for a function Cornerstone does not know.
// - Presentation LUT Shape INVERSE: the loader inverts MONOCHROME1 only, which the
//   viewport reads from the image pixel module. A MONOCHROME2 image with INVERSE is shown
//   inverted as a MONOCHROME1 one is (decoding is the same for both); MONOCHROME1 with
//   INVERSE (as DX declares it, PS3.3 C.8.11.7) is inverted once, as the server renders it.
export function registerDisplayProviders(metaData) {
  const loaderProvider = wadors.metaData.metaDataProvider;
  metaData.addProvider((type, imageId) => {
    if ((type !== "voiLutModule" && type !== "imagePixelModule") || typeof imageId !== "string" ||
        !imageId.startsWith("wadors:")) {
      return undefined;
    }
    const module = loaderProvider(type, imageId);
    const instance = wadors.metaDataManager.get(imageId);
    if (!module || !instance) return module;
    if (type === "voiLutModule") {
      const fn = String(first(instance, "00281056") || "LINEAR").trim().toUpperCase();
      return { ...module, voiLUTFunction: [VOI_LUT_FUNCTIONS.includes(fn) ? fn : "LINEAR"] };
    }
    const shape = String(first(instance, "20500020") || "").trim().toUpperCase();
    if (shape === "INVERSE" && module.photometricInterpretation === "MONOCHROME2") {
      return { ...module, photometricInterpretation: "MONOCHROME1" };
    }
    if (module.photometricInterpretation === "PALETTE COLOR") return withPalette(module, instance);
    return module;
  }, 10000);
}

// A palette's lookup table data is OW: in DICOM JSON an InlineBinary (little endian, PS3.18
// F.2.7), which the loader does not read (it takes "Value" only) — so it refused every
// palette colour image. Entries are 16-bit words, or bytes when the data has one per entry.
const PALETTE = { red: "00281201", green: "00281202", blue: "00281203" };

function withPalette(module, instance) {
  const out = { ...module };
  for (const [colour, t] of Object.entries(PALETTE)) {
    const key = `${colour}PaletteColorLookupTableData`;
    const inline = instance[t]?.InlineBinary;
    if (module[key]?.length || !inline) continue;
    const bytes = Uint8Array.from(atob(inline), (c) => c.charCodeAt(0));
    const entries = Number(module[`${colour}PaletteColorLookupTableDescriptor`]?.[0]) || 65536;
    out[key] = bytes.length >= entries * 2
      ? new Uint16Array(bytes.buffer, 0, entries)
      : bytes.slice(0, entries);
  }
  return out;
}
