// Performance marks (User Timing) at the moments a user sees something, read by
// bench/bench_viewer.py through performance.getEntriesByName (docs/benchmarks.md). Each
// mark is set once per page; startTime is from the navigation start.
//   nexrel:start, nexrel:init         the module runs; Cornerstone and the loader initialised
//   nexrel:metadata, nexrel:stack-set  series metadata fetched; the stack's first image loaded
//   nexrel:full-fidelity              the stack viewport's first render of the decoded image
//   nexrel:mpr-open                   MPR asked for
//   nexrel:mpr-ready                  the three MPR viewports rendered the (streaming) volume
//   nexrel:volume-loaded              every slice of the volume loaded
//   nexrel:mpr-complete               the three viewports rendered after that
import { Enums, eventTarget } from "@cornerstonejs/core";

export function mark(name) {
  if (!performance.getEntriesByName(name, "mark").length) performance.mark(name);
}

// `name` once every element has fired IMAGE_RENDERED from now on.
export function markWhenRendered(elements, name) {
  const pending = new Set(elements);
  for (const element of elements) {
    const done = () => {
      element.removeEventListener(Enums.Events.IMAGE_RENDERED, done);
      pending.delete(element);
      if (!pending.size) mark(name);
    };
    element.addEventListener(Enums.Events.IMAGE_RENDERED, done);
  }
}

// nexrel:volume-loaded when `volumeId` has loaded, then nexrel:mpr-complete once `elements`
// have rendered (`render` asks for that render).
export function watchVolume(volumeId, elements, render) {
  const loaded = (event) => {
    if (event.detail?.volumeId !== volumeId) return;
    eventTarget.removeEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, loaded);
    mark("nexrel:volume-loaded");
    markWhenRendered(elements, "nexrel:mpr-complete");
    render();
  };
  eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, loaded);
}
