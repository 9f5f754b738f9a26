// The diagnostic viewer (docs/viewer.md): /viewer/studies/<StudyInstanceUID>/.
// 1. The server's WebP preview is in the page: the first pixels need no script.
// 2. Cornerstone3D starts, the series' DICOMweb metadata is fetched, the stack viewport
//    loads the opened image through the wadors loader (decoded in a worker, codecs in
//    WebAssembly), and replaces the preview once drawn.
// 3. Tools, presets, cine, calibration, annotations (saved on the server) and, for a CT
//    or CBCT series, MPR.
import {
  init as coreInit,
  RenderingEngine,
  Enums,
  eventTarget,
  cache,
  metaData,
  utilities as coreUtilities,
} from "@cornerstonejs/core";
import { init as loaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  init as toolsInit,
  addTool,
  ToolGroupManager,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  StackScrollTool,
  LengthTool,
  AngleTool,
  ArrowAnnotateTool,
  CrosshairsTool,
  annotation as csAnnotation,
  utilities as toolUtilities,
  Enums as ToolEnums,
} from "@cornerstonejs/tools";

import { ask } from "./ask.js";
import { AnnotationStore } from "./annotations.js";
import {
  calibrationLabel,
  frameImageId,
  loadSeriesMetadata,
  parseImageId,
  first,
  registerDisplayProviders,
  registerProjectionPlaneProvider,
  UID,
  voiLutOf,
} from "./dicom.js";
import { Mpr } from "./mpr.js";
import { mark } from "./perf.js";
import { PRESET_ORDER, presetRange, windowOf } from "./presets.js";

const { MouseBindings } = ToolEnums;
const ENGINE_ID = "nexrel";
const STACK = "stack";
const TOOL_GROUP = "nexrel-stack";
const PRIMARY_TOOLS = {
  WindowLevel: WindowLevelTool,
  Pan: PanTool,
  Zoom: ZoomTool,
  Length: LengthTool,
  Angle: AngleTool,
  ArrowAnnotate: ArrowAnnotateTool,
};

const config = JSON.parse(document.getElementById("viewer-config").textContent);
const S = config.strings;
const root = document.getElementById("viewer");
const element = document.getElementById("stack-element");
const status = document.getElementById("status");

const state = {
  series: null, // the entry of config.series shown
  imageIds: [],
  metadata: {}, // seriesUid -> {sop: DICOM JSON}
  primary: "WindowLevel",
  preset: "default",
  playing: false,
  mpr: false,
  manual: new Map(), // imageId -> mm per pixel (manual calibration)
};

function say(text) {
  status.textContent = text || "";
}

function showError(error) {
  console.error(error);
  say(S.save_failed.replace("%(error)s", error.message || String(error)));
}

async function start() {
  mark("nexrel:start");
  await coreInit();
  // One decode worker per core (up to 4): a CBCT's 300 slices decode in parallel.
  const workers = Math.min(Math.max(navigator.hardwareConcurrency || 1, 1), 4);
  loaderInit({ maxWebWorkers: workers, wasmBasePath: config.wasmBasePath });
  mark("nexrel:init");
  registerProjectionPlaneProvider(metaData);
  registerDisplayProviders(metaData);
  toolsInit();
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, AngleTool,
    ArrowAnnotateTool, CrosshairsTool]) {
    addTool(tool);
  }
  const engine = new RenderingEngine(ENGINE_ID);
  engine.enableElement({
    viewportId: STACK,
    type: Enums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] },
  });
  state.engine = engine;
  state.viewport = engine.getViewport(STACK);
  state.mprView = new Mpr(engine);
  setUpTools();
  state.store = new AnnotationStore(config, { onError: showError, onCalibration: applyCalibration });
  wireEvents();
  const opened = config.series.find((s) => s.uid === config.open.series) || config.series[0];
  if (opened) await openSeries(opened, config.open.instance);
}

function setUpTools() {
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP);
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, AngleTool,
    ArrowAnnotateTool]) {
    group.addTool(tool.toolName, tool === ArrowAnnotateTool ? {
      getTextCallback: (done) => ask(S.note_prompt).then((text) => done(text || "")),
      changeTextCallback: (data, _detail, done) =>
        ask(S.note_prompt, { initial: data.data?.label || "" }).then((text) => {
          if (text !== null) done(text);
        }),
    } : {});
  }
  group.addViewport(STACK, ENGINE_ID);
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  for (const tool of [LengthTool, AngleTool, ArrowAnnotateTool]) group.setToolPassive(tool.toolName);
  state.group = group;
}

function setPrimary(name) {
  if (!PRIMARY_TOOLS[name] || state.mpr) return;
  state.group.setToolPassive(PRIMARY_TOOLS[state.primary].toolName);
  state.group.setToolActive(PRIMARY_TOOLS[name].toolName, {
    bindings: [{ mouseButton: MouseBindings.Primary }],
  });
  state.primary = name;
  for (const button of document.querySelectorAll("[data-tool]")) {
    button.classList.toggle("active", button.dataset.tool === name);
  }
}

// ------------------------------------------------------------------ series and images

async function openSeries(series, instanceUid = "") {
  if (state.playing) toggleCine();
  if (state.mpr) await toggleMpr();
  state.series = series;
  for (const a of document.querySelectorAll(".series-thumb")) {
    a.classList.toggle("current", a.dataset.series === series.uid);
  }
  const index = Math.max(0, series.instances.findIndex((i) => i.uid === instanceUid));
  showPreview(series.instances[index]?.preview);
  say(S.loading);
  if (!state.metadata[series.uid]) {
    state.metadata[series.uid] = await loadSeriesMetadata(config, config.study, series.uid);
  }
  mark("nexrel:metadata");
  // Each frame of each instance, in the order of the series.
  state.imageIds = series.instances.flatMap((instance) =>
    Array.from({ length: instance.frames || 1 }, (_, f) =>
      frameImageId(config, config.study, series.uid, instance.uid, f + 1),
    ),
  );
  const start = state.imageIds.findIndex((id) => parseImageId(id).sop === series.instances[index]?.uid);
  document.getElementById("mpr-toggle").hidden = !series.volume;
  try {
    await state.viewport.setStack(state.imageIds, Math.max(0, start));
    mark("nexrel:stack-set");
  } catch (error) {
    say(S.failed.replace("%(error)s", error?.message || String(error)));
    console.error(error);
    return;
  }
  applyPreset(state.preset);
  state.viewport.render();
}

function showPreview(src) {
  const preview = document.getElementById("preview");
  if (!preview) return;
  if (src) {
    preview.src = src;
    root.dataset.state = "preview";
  }
}

function currentImageId() {
  return state.viewport.getCurrentImageId();
}

function instanceOf(imageId) {
  const image = parseImageId(imageId || "");
  return image && state.metadata[state.series.uid]?.[image.sop];
}

function onNewImage() {
  const imageId = currentImageId();
  if (!imageId) return;
  const index = state.viewport.getCurrentImageIdIndex();
  document.getElementById("slice-info").textContent =
    `${S.slice} ${index + 1} / ${state.imageIds.length}`;
  document.getElementById("calibration-info").textContent = calibrationLabel(
    instanceOf(imageId),
    S,
    state.manual.get(imageId),
  );
  state.store.restore(imageId, element).then(() => state.viewport.render());
}

function onRendered() {
  if (root.dataset.state !== "ready" && state.viewport.getCurrentImageId() &&
      cache.getImage(state.viewport.getCurrentImageId())) {
    root.dataset.state = "ready";
    mark("nexrel:full-fidelity");
    say("");
  }
  const { voiRange, VOILUTFunction } = state.viewport.getProperties();
  if (voiRange) {
    const { width, center } = windowOf(voiRange, VOILUTFunction);
    document.getElementById("voi-info").textContent = `W ${Math.round(width)} · L ${Math.round(center)}`;
  }
}

// From the slice asked last, not the one shown: keys pressed faster than slices load
// must all count. Cornerstone's scroll() keeps that target and clamps it.
function scrollBy(delta) {
  if (state.mpr) return;
  state.viewport.scroll(delta);
}

// Previous or next image of the study: within the series, then across series.
function stepStudy(delta) {
  const next = state.viewport.getTargetImageIdIndex() + delta;
  if (next >= 0 && next < state.imageIds.length) {
    state.viewport.scroll(delta);
    return;
  }
  const at = config.series.indexOf(state.series);
  const other = config.series[at + delta];
  if (!other) return;
  const instance = delta > 0 ? other.instances[0] : other.instances[other.instances.length - 1];
  openSeries(other, instance.uid);
}

// ------------------------------------------------------------------ display

function applyPreset(name) {
  state.preset = name;
  document.getElementById("preset").value = name;
  const imageId = currentImageId();
  const image = imageId && cache.getImage(imageId);
  const modality = first(instanceOf(imageId), UID.modality) || state.series?.modality;
  const range = presetRange(name, modality === "CT" ? "CT" : "XRAY", image?.minPixelValue ?? 0,
    image?.maxPixelValue ?? 4095);
  if (state.mpr) {
    state.mprView.setVoi(range && presetRange(name, "CT", 0, 0));
    return;
  }
  state.viewport.setProperties(range ? { ...plainColormap(), voiRange: range } : fileDisplay(imageId));
  state.viewport.render();
}

// The file's own display of an image, as the server renders it (dicomnet/ingest/rendering.py):
// its first window through its VOI LUT Function, or for colour the full scale of Bits
// Stored (Cornerstone's own is 0..255, which saturates a 16-bit RGB image).
//
// Not Cornerstone's resetProperties: it puts back the transfer function captured before
// a MONOCHROME1 image was inverted, while keeping invert on, so such an image showed
// un-inverted after "File" or Reset.
function fileDisplay(imageId) {
  const image = imageId && cache.getImage(imageId);
  if (!image) return {};
  const lut = !image.color && voiLutOf(instanceOf(imageId));
  if (lut) {
    // A VOI LUT Sequence: the LUT's input range, through a grey colormap whose points are
    // the LUT's output normalised to its own min..max (as the server maps it to 0..255).
    // LINEAR first: changing the function recreates the transfer function (and its colormap).
    state.viewport.setProperties({ VOILUTFunction: Enums.VOILUTFunctionType.LINEAR });
    state.lutColormap = true;
    return {
      colormap: { name: lutColormap(lut, state.viewport.getProperties().invert) },
      voiRange: { lower: lut.first, upper: lut.first + lut.entries - 1 },
    };
  }
  if (image.color) {
    const bits = metaData.get("imagePixelModule", imageId)?.bitsStored || 8;
    state.lutColormap = false; // a colour image gets its own transfer functions
    return { voiRange: { lower: 0, upper: 2 ** Math.min(bits, 16) - 1 } };
  }
  const VOILUTFunction = image.voiLUTFunction || Enums.VOILUTFunctionType.LINEAR;
  return {
    ...plainColormap(),
    VOILUTFunction,
    voiRange: coreUtilities.windowLevel.toLowHighRange(image.windowWidth, image.windowCenter,
      VOILUTFunction),
  };
}

// Cornerstone applies a colormap's points over the voiRange (vtk's setMappingRange) and
// does not invert a new one: a colormap is built for the current invert (the invert of a
// following setProperties then flips it as usual).
function lutColormap(lut, inverted) {
  lut.names ||= {};
  const key = inverted ? "inverse" : "normal";
  if (!lut.names[key]) {
    let low = Infinity, high = -Infinity;
    for (const v of lut.data) { low = Math.min(low, v); high = Math.max(high, v); }
    const scale = high > low ? 1 / (high - low) : 0;
    const RGBPoints = new Array(lut.entries * 4);
    for (let i = 0; i < lut.entries; i++) {
      const g = (lut.data[i] - low) * scale;
      const value = inverted ? 1 - g : g;
      RGBPoints[i * 4] = lut.first + i;
      RGBPoints[i * 4 + 1] = RGBPoints[i * 4 + 2] = RGBPoints[i * 4 + 3] = value;
    }
    lut.names[key] = `nexrel-voi-lut-${++lutColormapCount}`;
    coreUtilities.colormap.registerColormap({ Name: lut.names[key], RGBPoints });
  }
  return lut.names[key];
}
let lutColormapCount = 0;

// After a VOI LUT's colormap, a plain window needs a plain grey ramp again.
function plainColormap() {
  if (!state.lutColormap) return {};
  state.lutColormap = false;
  const inverted = state.viewport.getProperties().invert;
  const name = inverted ? "nexrel-grey-inverse" : "nexrel-grey";
  if (!coreUtilities.colormap.getColormap(name)) {
    coreUtilities.colormap.registerColormap({
      Name: name, RGBPoints: inverted ? [0, 1, 1, 1, 1, 0, 0, 0] : [0, 0, 0, 0, 1, 1, 1, 1],
    });
  }
  return { colormap: { name } };
}

// Whether the image is shown inverted to begin with: MONOCHROME1 (and, through
// registerDisplayProviders, Presentation LUT Shape INVERSE).
function initiallyInverted(imageId) {
  return metaData.get("imagePixelModule", imageId)?.photometricInterpretation === "MONOCHROME1";
}

function act(action) {
  const vp = state.viewport;
  switch (action) {
    case "rotate": {
      const rotation = ((vp.getViewPresentation().rotation || 0) + 90) % 360;
      vp.setViewPresentation({ rotation });
      break;
    }
    case "flipH":
      vp.setCamera({ flipHorizontal: !vp.getCamera().flipHorizontal });
      break;
    case "flipV":
      vp.setCamera({ flipVertical: !vp.getCamera().flipVertical });
      break;
    case "invert":
      vp.setProperties({ invert: !vp.getProperties().invert });
      break;
    case "reset":
      vp.resetCamera();
      vp.setViewPresentation({ rotation: 0 });
      vp.setProperties({ ...fileDisplay(currentImageId()), invert: initiallyInverted(currentImageId()) });
      state.preset = "default";
      document.getElementById("preset").value = "default";
      break;
    case "cine":
      toggleCine();
      return;
    case "mpr":
      toggleMpr();
      return;
    case "calibrate":
      calibrate();
      return;
    case "prev":
      stepStudy(-1);
      return;
    case "next":
      stepStudy(1);
      return;
    case "help":
      document.getElementById("help").showModal();
      return;
    default:
      return;
  }
  vp.render();
}

function toggleCine() {
  const button = document.getElementById("cine");
  if (state.playing) {
    toolUtilities.cine.stopClip(element);
    state.playing = false;
  } else if (state.imageIds.length > 1) {
    toolUtilities.cine.playClip(element, { framesPerSecond: 12, loop: true });
    state.playing = true;
  }
  button.textContent = state.playing ? S.pause : S.play;
  button.classList.toggle("active", state.playing);
}

async function toggleMpr() {
  const mprBox = document.getElementById("mpr");
  const stackBox = document.getElementById("stack");
  const button = document.getElementById("mpr-toggle");
  if (state.mpr) {
    state.mpr = false;
    mprBox.hidden = true;
    stackBox.hidden = false;
    document.getElementById("slab-control").hidden = true;
    button.classList.remove("active");
    state.engine.resize(true, false);
    return;
  }
  if (!state.series?.volume) {
    say(S.mpr_unavailable);
    return;
  }
  if (state.playing) toggleCine();
  state.mpr = true;
  stackBox.hidden = true;
  mprBox.hidden = false;
  document.getElementById("slab-control").hidden = false;
  button.classList.add("active");
  state.engine.resize(true, false);
  try {
    await state.mprView.open(state.series.uid, state.imageIds);
    if (state.preset !== "default") applyPreset(state.preset);
  } catch (error) {
    say(S.failed.replace("%(error)s", error?.message || String(error)));
    console.error(error);
  }
}

// ------------------------------------------------------------------ calibration

// Manual calibration from a known length: the last line drawn on this image (or the one
// selected) and the length the user enters give mm per pixel, kept for this image on the
// server (an annotation of kind "calibration").
async function calibrate() {
  const imageId = currentImageId();
  const lines = (csAnnotation.state.getAnnotations(LengthTool.toolName, element) || []).filter(
    (a) => a.metadata.referencedImageId === imageId,
  );
  const selected = csAnnotation.selection.getAnnotationsSelected?.() || [];
  const line = lines.find((a) => selected.includes(a.annotationUID)) || lines[lines.length - 1];
  if (!line) {
    say(S.calibrate_first);
    return;
  }
  const [p1, p2] = line.data.handles.points.map((p) => coreUtilities.worldToImageCoords(imageId, p));
  const pixels = Math.hypot(p2[0] - p1[0], p2[1] - p1[1]);
  const answer = await ask(S.calibrate_prompt, {
    validate: (v) => (Number(v.replace(",", ".")) > 0 ? "" : S.calibrate_bad),
  });
  if (answer === null) return;
  const knownMm = Number(answer.replace(",", "."));
  const data = { mm_per_px: knownMm / pixels, known_mm: knownMm, pixels, points: line.data.handles.points };
  applyCalibration(imageId, data);
  const image = parseImageId(imageId);
  state.store.saveCalibration(image.sop, image.frame, data).catch(showError);
}

function applyCalibration(imageId, data) {
  state.manual.set(imageId, data.mm_per_px);
  // scale is pixels per mm; the unit spacings keep Cornerstone's row/column scales equal.
  toolUtilities.calibrateImageSpacing(imageId, state.engine, {
    type: Enums.CalibrationTypes.USER,
    scale: 1 / data.mm_per_px,
    rowPixelSpacing: 1,
    columnPixelSpacing: 1,
  });
  if (imageId === currentImageId()) {
    document.getElementById("calibration-info").textContent = calibrationLabel(
      instanceOf(imageId), S, data.mm_per_px);
  }
}

// ------------------------------------------------------------------ events

const KEYS = {
  ArrowUp: () => scrollBy(-1),
  ArrowLeft: () => scrollBy(-1),
  ArrowDown: () => scrollBy(1),
  ArrowRight: () => scrollBy(1),
  PageUp: () => stepStudy(-1),
  PageDown: () => stepStudy(1),
  " ": () => toggleCine(),
  w: () => setPrimary("WindowLevel"),
  p: () => setPrimary("Pan"),
  z: () => setPrimary("Zoom"),
  l: () => setPrimary("Length"),
  a: () => setPrimary("Angle"),
  t: () => setPrimary("ArrowAnnotate"),
  k: () => calibrate(),
  r: () => act("rotate"),
  h: () => act("flipH"),
  v: () => act("flipV"),
  i: () => act("invert"),
  m: () => toggleMpr(),
  Escape: () => act("reset"),
  "?": () => act("help"),
  Delete: () => removeSelected(),
  Backspace: () => removeSelected(),
};

function removeSelected() {
  for (const uid of csAnnotation.selection.getAnnotationsSelected?.() || []) {
    csAnnotation.state.removeAnnotation(uid);
  }
  state.viewport.render();
}

function wireEvents() {
  element.addEventListener(Enums.Events.STACK_NEW_IMAGE, onNewImage);
  element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
  eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, (e) => {
    say(S.failed.replace("%(error)s", e.detail?.error?.message || e.detail?.error || ""));
  });
  for (const button of document.querySelectorAll("[data-tool]")) {
    button.addEventListener("click", () => setPrimary(button.dataset.tool));
  }
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  document.getElementById("preset").addEventListener("change", (e) => applyPreset(e.target.value));
  document.getElementById("slab").addEventListener("input", (e) =>
    state.mprView.setSlab(Number(e.target.value) || 0));
  for (const a of document.querySelectorAll(".series-thumb")) {
    a.addEventListener("click", (event) => {
      event.preventDefault();
      const series = config.series.find((s) => s.uid === a.dataset.series);
      if (series) openSeries(series);
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea, dialog") || event.ctrlKey || event.metaKey) return;
    const digit = Number(event.key);
    if (digit >= 1 && digit <= PRESET_ORDER.length) {
      applyPreset(PRESET_ORDER[digit - 1]);
      event.preventDefault();
      return;
    }
    const handler = KEYS[event.key] || KEYS[event.key.toLowerCase()];
    if (handler) {
      event.preventDefault();
      handler();
    }
  });
  window.addEventListener("resize", () => state.engine.resize(true, true));
}

// For the browser tests and the curious: the engine and the viewport.
window.nexrelViewer = state;
state.lastAnnotation = () => csAnnotation.state.getAllAnnotations().at(-1);

start().catch((error) => {
  console.error(error);
  say(S.failed.replace("%(error)s", error?.message || String(error)));
});
