// Window presets (docs/viewer.md). CT and CBCT store Hounsfield units, so their presets are
// absolute; a radiograph's values are the detector's own, so its presets are fractions of
// the image's value range [min, max]: width and centre as parts of (max - min).
export const CT_PRESETS = {
  bone: { width: 2500, center: 500 },
  soft: { width: 400, center: 40 },
  endo: { width: 2000, center: 1200 },
  perio: { width: 1600, center: 400 },
};

export const XRAY_PRESETS = {
  bone: { width: 0.5, center: 0.65 },
  soft: { width: 0.5, center: 0.3 },
  endo: { width: 0.35, center: 0.6 },
  perio: { width: 0.7, center: 0.5 },
};

export const PRESET_ORDER = ["default", "bone", "soft", "endo", "perio"];

// The VOI range {lower, upper} of ``name`` for an image of ``modality`` whose values span
// [min, max]; null for "default" (the file's own window). A DICOM LINEAR window (PS3.3
// C.11.2.1.2.1), as a file's own: the readout then shows the preset's width and centre.
export function presetRange(name, modality, min, max) {
  if (name === "default") return null;
  if (modality === "CT") {
    const { width, center } = CT_PRESETS[name];
    return linearRange(width, center);
  }
  const span = Math.max(1, max - min);
  const { width, center } = XRAY_PRESETS[name];
  return linearRange(width * span, min + center * span);
}

// Cornerstone's range of a LINEAR window (utilities.windowLevel.toLowHighRange).
export function linearRange(width, center) {
  return { lower: center - 0.5 - (width - 1) / 2, upper: center - 0.5 + (width - 1) / 2 };
}

// The width and centre of a range as the VOI LUT Function reads it (the readout): LINEAR and
// SIGMOID windows span [c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2], LINEAR_EXACT [c - w/2, c + w/2].
export function windowOf(range, fn = "LINEAR") {
  if (fn === "LINEAR_EXACT") {
    return { width: range.upper - range.lower, center: (range.upper + range.lower) / 2 };
  }
  return { width: range.upper - range.lower + 1, center: (range.upper + range.lower + 1) / 2 };
}
