// Prior/current comparison (docs/viewer.md): /viewer/compare/?image=<id>&image=<id>.
// Two stack viewports side by side, each showing one image through the same DICOMweb path as
// the viewer (wadors loader, decoded in a worker). Zoom and pan, and window/level, are
// synchronised between the two while "Synchronise" is ticked:
// - zoom and pan by Cornerstone's zoom/pan synchroniser (relative zoom: images of different
//   sizes stay matched);
// - window/level by our own VOI synchroniser: the same window when both images have the same
//   Bits Stored, else the same window as a fraction of each image's value scale (a 12-bit
//   prior and an 8-bit current then brighten together instead of one going white).
import {
  init as coreInit,
  RenderingEngine,
  Enums,
  cache,
  metaData,
} from "@cornerstonejs/core";
import { init as loaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  init as toolsInit,
  addTool,
  ToolGroupManager,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  SynchronizerManager,
  synchronizers,
  Enums as ToolEnums,
} from "@cornerstonejs/tools";

import {
  frameImageId,
  loadSeriesMetadata,
  registerDisplayProviders,
  registerProjectionPlaneProvider,
  UID,
  first,
} from "./dicom.js";
import { presetRange, windowOf } from "./presets.js";

const { MouseBindings } = ToolEnums;
const ENGINE_ID = "nexrel-compare";
const TOOL_GROUP = "nexrel-compare";
const ZOOM_PAN_SYNC = "nexrel-compare-zoom-pan";
const VOI_SYNC = "nexrel-compare-voi";
const TOOLS = { WindowLevel: WindowLevelTool, Pan: PanTool, Zoom: ZoomTool };

const config = JSON.parse(document.getElementById("compare-config").textContent);
const S = config.strings;
const root = document.getElementById("compare");
const state = { viewports: [], primary: "WindowLevel", synced: true, metadata: [] };

function say(index, text) {
  document.querySelector(`[data-side="${index}"] .status`).textContent = text || "";
}

async function start() {
  await coreInit();
  loaderInit({ maxWebWorkers: 2, wasmBasePath: config.wasmBasePath });
  registerProjectionPlaneProvider(metaData);
  registerDisplayProviders(metaData);
  toolsInit();
  for (const tool of Object.values(TOOLS)) addTool(tool);
  const engine = new RenderingEngine(ENGINE_ID);
  state.engine = engine;
  config.sides.forEach((side, index) => {
    engine.enableElement({
      viewportId: `side-${index}`,
      type: Enums.ViewportType.STACK,
      element: document.getElementById(`side-${index}-element`),
      defaultOptions: { background: [0, 0, 0] },
    });
    state.viewports.push(engine.getViewport(`side-${index}`));
  });
  setUpTools();
  setUpSynchronizers();
  wireEvents();
  await Promise.all(config.sides.map(openSide));
  if (state.viewports.every((vp) => vp.getCurrentImageId())) root.dataset.state = "ready";
}

function setUpTools() {
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP);
  for (const tool of Object.values(TOOLS)) group.addTool(tool.toolName);
  state.viewports.forEach((vp) => group.addViewport(vp.id, ENGINE_ID));
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  state.group = group;
}

function setUpSynchronizers() {
  state.zoomPan = synchronizers.createZoomPanSynchronizer(ZOOM_PAN_SYNC);
  state.voi = SynchronizerManager.createSynchronizer(VOI_SYNC, Enums.Events.VOI_MODIFIED, syncVoi);
  for (const sync of [state.zoomPan, state.voi]) {
    state.viewports.forEach((vp) => sync.add({ renderingEngineId: ENGINE_ID, viewportId: vp.id }));
  }
}

// The value scale of the image shown in a viewport: [0, 2^BitsStored - 1] (signed images
// centred on 0), from its metadata.
function valueScale(viewport) {
  const imageId = viewport.getCurrentImageId();
  const pixel = imageId && metaData.get("imagePixelModule", imageId);
  const bits = pixel?.bitsStored || 8;
  const top = 2 ** Math.min(bits, 16);
  return pixel?.pixelRepresentation === 1 ? { low: -top / 2, high: top / 2 - 1, bits } : { low: 0, high: top - 1, bits };
}

function syncVoi(_synchronizer, source, target) {
  const from = state.engine.getViewport(source.viewportId);
  const to = state.engine.getViewport(target.viewportId);
  const { voiRange, invert } = from.getProperties();
  if (!voiRange || !to.getCurrentImageId()) return;
  const a = valueScale(from);
  const b = valueScale(to);
  let range = voiRange;
  if (a.bits !== b.bits) {
    const scale = (b.high - b.low) / (a.high - a.low);
    range = { lower: b.low + (voiRange.lower - a.low) * scale, upper: b.low + (voiRange.upper - a.low) * scale };
  }
  to.setProperties({ voiRange: range, invert });
  to.render();
}

async function openSide(side, index) {
  say(index, S.loading);
  try {
    const metadata = await loadSeriesMetadata(config, side.study, side.series);
    state.metadata[index] = metadata[side.sop];
    const imageIds = Array.from({ length: side.frames || 1 }, (_, f) =>
      frameImageId(config, side.study, side.series, side.sop, f + 1));
    await state.viewports[index].setStack(imageIds, 0);
    state.viewports[index].render();
    document.querySelector(`[data-side="${index}"]`).dataset.state = "ready";
    say(index, "");
  } catch (error) {
    console.error(error);
    say(index, S.failed.replace("%(error)s", error?.message || String(error)));
  }
}

function showVoi(index) {
  const { voiRange, VOILUTFunction } = state.viewports[index].getProperties();
  if (!voiRange) return;
  const { width, center } = windowOf(voiRange, VOILUTFunction);
  document.querySelector(`[data-side="${index}"] .voi-info`).textContent =
    `W ${Math.round(width)} · L ${Math.round(center)}`;
}

function setPrimary(name) {
  if (!TOOLS[name]) return;
  state.group.setToolPassive(TOOLS[state.primary].toolName);
  state.group.setToolActive(TOOLS[name].toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  state.primary = name;
  for (const button of document.querySelectorAll("[data-tool]")) {
    button.classList.toggle("active", button.dataset.tool === name);
  }
}

// A preset on both images, each by its own modality and value range (as in the viewer).
function applyPreset(name) {
  state.viewports.forEach((vp, index) => {
    const imageId = vp.getCurrentImageId();
    const image = imageId && cache.getImage(imageId);
    if (!image) return;
    const modality = first(state.metadata[index], UID.modality);
    const range = presetRange(name, modality === "CT" ? "CT" : "XRAY", image.minPixelValue ?? 0,
      image.maxPixelValue ?? 4095);
    if (range) vp.setProperties({ voiRange: range });
    else vp.resetProperties();
    vp.render();
  });
}

function act(action) {
  for (const vp of state.viewports) {
    if (action === "invert") vp.setProperties({ invert: !vp.getProperties().invert });
    if (action === "reset") {
      vp.resetCamera();
      vp.resetProperties();
    }
    vp.render();
  }
  if (action === "reset") document.getElementById("compare-preset").value = "default";
}

function setSynced(on) {
  state.synced = on;
  for (const sync of [state.zoomPan, state.voi]) sync.setEnabled(on);
}

function wireEvents() {
  state.viewports.forEach((vp, index) => {
    vp.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => showVoi(index));
  });
  for (const button of document.querySelectorAll("[data-tool]")) {
    button.addEventListener("click", () => setPrimary(button.dataset.tool));
  }
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  document.getElementById("compare-preset").addEventListener("change", (e) => applyPreset(e.target.value));
  document.getElementById("compare-sync").addEventListener("change", (e) => setSynced(e.target.checked));
  window.addEventListener("resize", () => state.engine.resize(true, true));
}

// For the browser tests: the viewports and the synchronisers.
window.nexrelCompare = state;

start().catch((error) => {
  console.error(error);
  say(0, S.failed.replace("%(error)s", error?.message || String(error)));
});
