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
// [min, max]; null for "default" (the file's own window).
export function presetRange(name, modality, min, max) {
  if (name === "default") return null;
  if (modality === "CT") {
    const { width, center } = CT_PRESETS[name];
    return { lower: center - width / 2, upper: center + width / 2 };
  }
  const span = Math.max(1, max - min);
  const { width, center } = XRAY_PRESETS[name];
  const c = min + center * span;
  return { lower: c - (width * span) / 2, upper: c + (width * span) / 2 };
}
