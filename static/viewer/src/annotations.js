// Annotations saved per image on the server (/viewer/api/, dicomnet/viewer/annotations.py):
// each Cornerstone annotation drawn is POSTed, its moves PATCHed, its removal DELETEd; the
// annotations of an image are fetched the first time it is shown and drawn again.
import { annotation as csAnnotation, Enums as ToolEnums } from "@cornerstonejs/tools";
import { eventTarget } from "@cornerstonejs/core";
import { parseImageId } from "./dicom.js";

const KIND_OF_TOOL = { Length: "length", Angle: "angle", ArrowAnnotate: "arrow" };
const TOOL_OF_KIND = { length: "Length", angle: "Angle", arrow: "ArrowAnnotate" };

function csrfToken() {
  const match = /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie);
  return match ? decodeURIComponent(match[1]) : "";
}

async function send(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      /* not JSON */
    }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function stats(annotation) {
  const cached = Object.values(annotation.data.cachedStats || {})[0] || {};
  return { length: cached.length, angle: cached.angle, unit: cached.unit };
}

export class AnnotationStore {
  constructor(config, { onError, onCalibration }) {
    this.config = config;
    this.onError = onError;
    this.onCalibration = onCalibration;
    this.serverId = new Map(); // annotationUID -> server id, or the promise of it
    this.loaded = new Map(); // sop -> Promise of the server's rows
    this.restoring = false;
    this.timers = new Map();
    const E = ToolEnums.Events;
    eventTarget.addEventListener(E.ANNOTATION_COMPLETED, (e) => this.completed(e.detail.annotation));
    eventTarget.addEventListener(E.ANNOTATION_MODIFIED, (e) => this.modified(e.detail.annotation));
    eventTarget.addEventListener(E.ANNOTATION_REMOVED, (e) => this.removed(e.detail.annotation));
  }

  url(sop) {
    return this.config.annotations.replace("SOP", encodeURIComponent(sop));
  }

  one(id) {
    return this.config.annotation.replace(/0$/, String(id));
  }

  payload(annotation) {
    const { metadata, data } = annotation;
    return {
      label: (data.label || data.text || "").slice(0, 200),
      data: {
        toolName: metadata.toolName,
        points: data.handles.points,
        textBox: data.handles.textBox?.worldPosition ? data.handles.textBox : undefined,
        FrameOfReferenceUID: metadata.FrameOfReferenceUID,
        viewPlaneNormal: metadata.viewPlaneNormal,
        viewUp: metadata.viewUp,
        ...stats(annotation),
      },
    };
  }

  completed(annotation) {
    const kind = KIND_OF_TOOL[annotation.metadata.toolName];
    const image = parseImageId(annotation.metadata.referencedImageId || "");
    if (!kind || !image || this.restoring) return;
    // Modifications (the tool's statistics, computed throttled, often arrive after this)
    // wait for the row's id: serverId holds the promise of it until the POST answers.
    const created = send("POST", this.url(image.sop), {
      kind,
      frame: image.frame,
      ...this.payload(annotation),
    }).then(
      (row) => {
        this.serverId.set(annotation.annotationUID, row.id);
        return row.id;
      },
      (error) => {
        this.serverId.delete(annotation.annotationUID);
        this.onError(error);
        return null;
      },
    );
    this.serverId.set(annotation.annotationUID, created);
  }

  modified(annotation) {
    const uid = annotation.annotationUID;
    if (!this.serverId.has(uid) || this.restoring) return;
    clearTimeout(this.timers.get(uid));
    this.timers.set(
      uid,
      setTimeout(async () => {
        const id = await this.serverId.get(uid);
        if (id) send("PATCH", this.one(id), this.payload(annotation)).catch(this.onError);
      }, 300),
    );
  }

  async removed(annotation) {
    const uid = annotation.annotationUID;
    if (!this.serverId.has(uid)) return;
    clearTimeout(this.timers.get(uid));
    const id = await this.serverId.get(uid);
    this.serverId.delete(uid);
    if (id) send("DELETE", this.one(id)).catch(this.onError);
  }

  async saveCalibration(sop, frame, data) {
    return send("POST", this.url(sop), { kind: "calibration", frame, label: "", data });
  }

  // Draws the server's annotations of the image ``imageId`` on ``element`` (once per image),
  // and hands its calibration, if any, to onCalibration.
  async restore(imageId, element) {
    const image = parseImageId(imageId);
    if (!image) return;
    if (!this.loaded.has(image.sop)) {
      this.loaded.set(
        image.sop,
        send("GET", this.url(image.sop)).then((body) => ({ rows: body.annotations, drawn: new Set() })),
      );
    }
    let entry;
    try {
      entry = await this.loaded.get(image.sop);
    } catch (error) {
      this.loaded.delete(image.sop);
      this.onError(error);
      return;
    }
    this.restoring = true;
    try {
      for (const row of entry.rows) {
        if (row.frame !== image.frame || entry.drawn.has(row.id)) continue;
        entry.drawn.add(row.id);
        if (row.kind === "calibration") {
          this.onCalibration(imageId, row.data);
          continue;
        }
        const toolName = TOOL_OF_KIND[row.kind];
        const d = row.data;
        const restored = {
          metadata: {
            toolName,
            referencedImageId: imageId,
            FrameOfReferenceUID: d.FrameOfReferenceUID,
            viewPlaneNormal: d.viewPlaneNormal,
            viewUp: d.viewUp,
          },
          data: {
            handles: {
              points: d.points,
              activeHandleIndex: null,
              textBox: d.textBox || { hasMoved: false },
            },
            label: row.label,
            text: row.kind === "arrow" ? row.label : undefined,
            cachedStats: {},
          },
          highlighted: false,
          invalidated: true,
          isLocked: false,
          isVisible: true,
        };
        const uid = csAnnotation.state.addAnnotation(restored, element);
        this.serverId.set(uid || restored.annotationUID, row.id);
      }
    } finally {
      this.restoring = false;
    }
  }
}
