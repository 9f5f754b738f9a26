// Multiplanar reformation of a CT or CBCT series: axial, coronal and sagittal orthographic
// viewports of one streaming volume, crosshairs, one window for the three (a VOI
// synchronizer) and a slab (MIP) thickness. The volume's geometry comes from Image
// Position/Orientation (Patient) in the metadata: nothing here flips or mirrors.
import {
  Enums,
  setVolumesForViewports,
  volumeLoader,
  cache,
} from "@cornerstonejs/core";
import {
  ToolGroupManager,
  CrosshairsTool,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  StackScrollTool,
  synchronizers,
  Enums as ToolEnums,
} from "@cornerstonejs/tools";

import { mark, markWhenRendered, watchVolume } from "./perf.js";

const { MouseBindings } = ToolEnums;
export const MPR_VIEWPORTS = [
  ["mpr-axial", Enums.OrientationAxis.AXIAL],
  ["mpr-coronal", Enums.OrientationAxis.CORONAL],
  ["mpr-sagittal", Enums.OrientationAxis.SAGITTAL],
];
const TOOL_GROUP = "nexrel-mpr";

export class Mpr {
  constructor(engine) {
    this.engine = engine;
    this.volumeId = null;
    this.enabled = false;
  }

  async open(seriesUid, imageIds) {
    mark("nexrel:mpr-open");
    const volumeId = `cornerstoneStreamingImageVolume:nexrel-${seriesUid}`;
    if (!this.enabled) {
      for (const [viewportId, orientation] of MPR_VIEWPORTS) {
        this.engine.enableElement({
          viewportId,
          type: Enums.ViewportType.ORTHOGRAPHIC,
          element: document.getElementById(viewportId),
          defaultOptions: { orientation, background: [0, 0, 0] },
        });
      }
      this.tools();
      this.enabled = true;
    }
    if (this.volumeId !== volumeId) {
      const volume =
        cache.getVolume(volumeId) || (await volumeLoader.createAndCacheVolume(volumeId, { imageIds }));
      const ids = MPR_VIEWPORTS.map(([id]) => id);
      const elements = ids.map((id) => document.getElementById(id));
      watchVolume(volumeId, elements, () => this.engine.renderViewports(ids));
      volume.load();
      await setVolumesForViewports(
        this.engine,
        [{ volumeId }],
        MPR_VIEWPORTS.map(([id]) => id),
      );
      markWhenRendered(elements, "nexrel:mpr-ready");
      this.volumeId = volumeId;
    }
    this.engine.renderViewports(MPR_VIEWPORTS.map(([id]) => id));
  }

  tools() {
    const group = ToolGroupManager.createToolGroup(TOOL_GROUP);
    for (const tool of [CrosshairsTool, WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) {
      group.addTool(tool.toolName);
    }
    MPR_VIEWPORTS.forEach(([id]) => group.addViewport(id, this.engine.id));
    group.setToolActive(CrosshairsTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    group.setToolActive(WindowLevelTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Secondary }],
    });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Primary, modifierKey: ToolEnums.KeyboardBindings.Ctrl }],
    });
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    this.voiSync = synchronizers.createVOISynchronizer("nexrel-mpr-voi", {
      syncInvertState: true,
      syncColormap: false,
    });
    MPR_VIEWPORTS.forEach(([id]) => this.voiSync.add({ renderingEngineId: this.engine.id, viewportId: id }));
  }

  viewports() {
    return MPR_VIEWPORTS.map(([id]) => this.engine.getViewport(id)).filter(Boolean);
  }

  setVoi(range) {
    for (const vp of this.viewports()) {
      if (range) vp.setProperties({ voiRange: range }, this.volumeId);
      else vp.resetProperties?.(this.volumeId);
    }
    this.engine.renderViewports(MPR_VIEWPORTS.map(([id]) => id));
  }

  setSlab(mm) {
    for (const vp of this.viewports()) {
      vp.setBlendMode(
        mm > 0 ? Enums.BlendModes.MAXIMUM_INTENSITY_BLEND : Enums.BlendModes.COMPOSITE,
      );
      vp.setSlabThickness(Math.max(mm, 0.1));
    }
    this.engine.renderViewports(MPR_VIEWPORTS.map(([id]) => id));
  }
}
