"""A mount as a printable PDF (reportlab, BSD): the practice, the patient, the date and each
slot's image with its tooth numbers, laid out as on screen."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.utils import formats
from django.utils.translation import gettext as _
from PIL import Image, ImageOps
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from dicomnet.dental.selectors import MountView, SlotView
from patients.models import Practice

MARGIN = 12 * mm
LABEL = 5 * mm


def _image(slot: SlotView) -> ImageReader | None:
    """The slot's display image, turned and flipped as on screen; None if there is none."""
    instance = slot.instance
    if instance is None or not (instance.preview_key or instance.thumbnail_key):
        return None
    with default_storage.open(instance.preview_key or instance.thumbnail_key, "rb") as fh:
        image: Image.Image = Image.open(io.BytesIO(fh.read()))
        image.load()
    assert slot.placement is not None
    turn = (slot.rotation + slot.placement.rotation) % 360
    if turn:
        image = image.rotate(-turn, expand=True)  # PIL turns counter-clockwise
    if slot.placement.flipped:
        image = ImageOps.mirror(image)
    return ImageReader(image.convert("L") if image.mode not in ("L", "RGB") else image)


def mount_pdf(view: MountView, *, practice: Practice) -> bytes:
    out = io.BytesIO()
    width, height = landscape(A4)
    # Uncompressed page streams: a few hundred bytes of text, readable by the tests.
    pdf = canvas.Canvas(out, pagesize=(width, height), pageCompression=0)
    mount = view.mount
    study = mount.study
    patient = study.patient if study else None
    pdf.setTitle(f"{mount.template.name} · {patient.full_name if patient else ''}")
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(MARGIN, height - MARGIN, practice.name)
    pdf.setFont("Helvetica", 10)
    who = (
        f"{patient.full_name} · {_('Chart')} {patient.chart_number}"
        if patient
        else (study.patient_name.replace("^", " ") if study else "")
    )
    when = formats.date_format(study.study_date, "Y-m-d") if study and study.study_date else "—"
    pdf.drawString(MARGIN, height - MARGIN - 6 * mm, f"{who} · {when} · {mount.template.name}")
    columns = max(max((s.column for s in view.slots), default=1), mount.template.columns, 1)
    rows = max(view.rows, 1)
    top = height - MARGIN - 12 * mm
    cell_w = (width - 2 * MARGIN) / columns
    cell_h = (top - MARGIN) / rows
    for slot in view.slots:
        x = MARGIN + (slot.column - 1) * cell_w
        y = top - slot.row * cell_h
        box_w, box_h = cell_w - 2 * mm, cell_h - LABEL - 2 * mm
        pdf.setStrokeGray(0.6)
        pdf.rect(x, y + LABEL, box_w, box_h)
        image = _image(slot)
        if image is not None:
            iw, ih = image.getSize()
            scale = min(box_w / iw, box_h / ih)
            pdf.drawImage(
                image,
                x + (box_w - iw * scale) / 2,
                y + LABEL + (box_h - ih * scale) / 2,
                iw * scale,
                ih * scale,
            )
        pdf.setFont("Helvetica", 8)
        label = " ".join(slot.labels) or f"#{slot.position}"
        pdf.drawCentredString(x + box_w / 2, y + 1.5 * mm, label)
    pdf.showPage()
    pdf.save()
    return out.getvalue()
