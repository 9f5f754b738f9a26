"""WADO-RS rendered and thumbnail (PS3.18 §10.4.1.1.3, §9.5) over real ingested objects: the
media types, window, viewport, quality, frames, errors, practice scoping and the access log;
an explicit window checked against numpy."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.utils.http import parse_header_parameters
from PIL import Image
from pydicom.uid import generate_uid

from dicomnet.dicomweb import rendered
from dicomnet.models import DicomInstance
from patients.models import AccessLog
from tests.dicom_samples import ingest_dataset, intraoral


def instance_url(instance: DicomInstance) -> str:
    return (
        f"/dicomweb/studies/{instance.study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )


def image_of(response, media_type: str = "image/jpeg") -> Image.Image:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == media_type
    assert response["Cache-Control"] == "private, no-store"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format == rendered.FORMATS[media_type]
    return image


@pytest.fixture
def ramp(practice) -> DicomInstance:
    """96 x 64 (columns x rows), 12-bit, values 0..4095 by column, no window of its own."""
    ds = intraoral(patient_id="1001", patient_name="Côté^Zoé", size=64)
    ds.Columns = 96
    ds.PixelData = np.tile(np.linspace(0, 4095, 96).round().astype(np.uint16), (64, 1)).tobytes()
    return ingest_dataset(practice, ds)


@pytest.fixture
def multiframe(practice) -> DicomInstance:
    """Three 32 x 32 frames, filled with 1000, 2000, 3000."""
    ds = intraoral(patient_id="2001", patient_name="Bélanger^Éloi", size=32)
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack([np.full((32, 32), n * 1000, np.uint16) for n in (1, 2, 3)]).tobytes()
    return ingest_dataset(practice, ds)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "image/jpeg"),
        ("*/*", "image/jpeg"),
        ("image/*", "image/jpeg"),
        ("image/jpeg", "image/jpeg"),
        ("image/png", "image/png"),
        ("image/webp", "image/webp"),
        ("image/png;q=0.5, image/webp", "image/webp"),
        ("text/html, image/png", "image/png"),
    ],
)
def test_each_media_type(clinician_client, ramp, accept, media_type):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = clinician_client.get(f"{instance_url(ramp)}/rendered", **headers)
    assert image_of(response, media_type).size == (96, 64)


def test_an_image_type_we_do_not_make_is_406_with_a_message(clinician_client, ramp):
    response = clinician_client.get(f"{instance_url(ramp)}/rendered", HTTP_ACCEPT="image/gif")
    assert response.status_code == 406
    assert "image/jpeg" in response.json()["detail"]


def test_an_explicit_window_matches_numpy(clinician_client, ramp):
    """LINEAR, LINEAR_EXACT, SIGMOID (PS3.3 C.11.2.1.2.1, C.11.2.1.3) computed here by hand."""
    x = np.tile(np.linspace(0, 4095, 96).round(), (64, 1))
    c, w = 2000.0, 1000.0
    references = {
        "linear": np.clip(((x - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255),
        "linear-exact": np.clip(((x - c) / w + 0.5) * 255, 0, 255),
        "sigmoid": 255 / (1 + np.exp(-4 * (x - c) / w)),
    }
    for function, expected in references.items():
        response = clinician_client.get(
            f"{instance_url(ramp)}/rendered?window={c:g},{w:g},{function}",
            HTTP_ACCEPT="image/png",
        )
        got = np.asarray(image_of(response, "image/png"), dtype=float)
        assert np.abs(got - expected).max() <= 1, function
    # Without a window the same pixels spread over the whole range: the window did it.
    plain = np.asarray(
        image_of(clinician_client.get(f"{instance_url(ramp)}/rendered", HTTP_ACCEPT="image/png"),
                 "image/png"), dtype=float,
    )  # fmt: skip
    assert np.abs(plain - references["linear"]).max() > 50


def test_viewport_scales_to_fit_keeping_the_aspect_and_crops(clinician_client, ramp):
    url = f"{instance_url(ramp)}/rendered"
    assert image_of(clinician_client.get(f"{url}?viewport=48,48")).size == (48, 32)
    assert image_of(clinician_client.get(f"{url}?viewport=300,128")).size == (192, 128)
    # The right half only (columns 48..95): its left edge is mid-grey, not black.
    crop = image_of(
        clinician_client.get(f"{url}?viewport=48,64,48,0,48,64", HTTP_ACCEPT="image/png"),
        "image/png",
    )
    assert crop.size == (48, 64)
    pixels = np.asarray(crop)
    assert 110 <= pixels[32, 0] <= 145 and pixels[32, -1] >= 250


def test_quality_changes_the_jpeg_and_webp(clinician_client, practice):
    noisy = ingest_dataset(practice, intraoral(patient_id="1001", size=128, seed=3))
    for media_type in ("image/jpeg", "image/webp"):
        sizes = [
            len(
                clinician_client.get(
                    f"{instance_url(noisy)}/rendered?quality={q}", HTTP_ACCEPT=media_type
                ).content
            )
            for q in (5, 95)
        ]
        assert sizes[0] < sizes[1] / 2, (media_type, sizes)


@pytest.mark.parametrize(
    "query",
    [
        "window=40,400",
        "window=40,400,cubic",
        "window=a,400,linear",
        "window=40,0,linear",
        "window=40,400,linear&window=1,2,linear",
        "viewport=0,10",
        "viewport=10",
        "viewport=10,10,0,0,-5,5",
        "viewport=10.5,10",
        "quality=0",
        "quality=101",
        "quality=high",
    ],
)
def test_a_malformed_parameter_is_400_with_a_message(clinician_client, ramp, query):
    response = clinician_client.get(f"{instance_url(ramp)}/rendered?{query}")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_annotation_is_accepted_and_ignored(clinician_client, ramp):
    url = f"{instance_url(ramp)}/rendered"
    plain = clinician_client.get(url, HTTP_ACCEPT="image/png").content
    annotated = clinician_client.get(f"{url}?annotation=patient,technique", HTTP_ACCEPT="image/png")
    assert annotated.status_code == 200 and annotated.content == plain


def test_frames_one_is_an_image_several_a_multipart(clinician_client, multiframe):
    url = f"{instance_url(multiframe)}/frames"
    window = "window=2000,4000,linear-exact"  # 1000 -> 64, 2000 -> 128, 3000 -> 191
    one = np.asarray(
        image_of(
            clinician_client.get(f"{url}/3/rendered?{window}", HTTP_ACCEPT="image/png"), "image/png"
        )
    )
    assert abs(int(one.mean()) - 191) <= 1
    response = clinician_client.get(f"{url}/2,1/rendered?{window}", HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    media_type, params = parse_header_parameters(response["Content-Type"])
    assert (media_type, params["type"]) == ("multipart/related", "image/png")
    marker = b"--" + params["boundary"].encode()
    parts = response.content.split(marker)[1:-1]
    means = [
        np.asarray(Image.open(io.BytesIO(p.partition(b"\r\n\r\n")[2][:-2]))).mean() for p in parts
    ]
    assert [round(m) for m in means] == [128, 64]  # in the order asked


def test_an_instance_renders_its_first_frame_its_thumbnail_the_middle(clinician_client, multiframe):
    window = "window=2000,4000,linear-exact"
    first = clinician_client.get(f"{instance_url(multiframe)}/rendered?{window}",
                                 HTTP_ACCEPT="image/png")  # fmt: skip
    thumb = clinician_client.get(f"{instance_url(multiframe)}/thumbnail?{window}",
                                 HTTP_ACCEPT="image/png")  # fmt: skip
    assert round(np.asarray(image_of(first, "image/png")).mean()) == 64
    assert round(np.asarray(image_of(thumb, "image/png")).mean()) == 128


def test_a_frame_out_of_range_is_404_and_a_bad_list_400(clinician_client, multiframe):
    url = f"{instance_url(multiframe)}/frames"
    assert clinician_client.get(f"{url}/4/rendered").status_code == 404
    assert clinician_client.get(f"{url}/1,4/thumbnail").status_code == 404
    for bad in ("0", "x", "1,,2", "-1"):
        assert clinician_client.get(f"{url}/{bad}/rendered").status_code == 400, bad


def test_study_and_series_render_their_first_instance(clinician_client, practice):
    first = ingest_dataset(practice, intraoral(patient_id="1001", size=40, instance_number=1))
    study, series = first.study.study_instance_uid, first.series.series_instance_uid
    ingest_dataset(
        practice,
        intraoral(patient_id="1001", size=80, instance_number=2, study_uid=study,
                  series_uid=series),
    )  # fmt: skip
    for kind, size in (("rendered", (40, 40)), ("thumbnail", (40, 40))):
        for url in (f"/dicomweb/studies/{study}", f"/dicomweb/studies/{study}/series/{series}"):
            assert image_of(clinician_client.get(f"{url}/{kind}")).size == size


def test_a_thumbnail_is_small_unless_a_viewport_says(clinician_client, practice):
    big = ingest_dataset(practice, intraoral(patient_id="1001", size=300))
    assert image_of(clinician_client.get(f"{instance_url(big)}/thumbnail")).size == (128, 128)
    sized = clinician_client.get(f"{instance_url(big)}/thumbnail?viewport=64,32")
    assert image_of(sized).size == (32, 32)


def test_another_practices_study_is_404_and_no_session_401(
    client, client_for, other_practice, ramp
):
    other = client_for(other_practice.user)
    study = ramp.study.study_instance_uid
    for url in (
        f"{instance_url(ramp)}/rendered",
        f"{instance_url(ramp)}/frames/1/thumbnail",
        f"/dicomweb/studies/{study}/rendered",
        f"/dicomweb/studies/{study}/thumbnail",
    ):
        assert other.get(url).status_code == 404, url
        response = client.get(url)
        assert response.status_code == 401 and response.has_header("WWW-Authenticate")
    unknown = f"/dicomweb/studies/{generate_uid()}/rendered"
    assert client_for(other_practice.user).get(unknown).status_code == 404
    assert (
        client_for(other_practice.user).get("/dicomweb/studies/1.2.x/rendered").status_code == 400
    )


def test_a_rendering_is_in_the_access_log(clinician_client, clinician, ramp):
    url = f"{instance_url(ramp)}/rendered"
    before = AccessLog.objects.count()
    assert clinician_client.get(url).status_code == 200
    [row] = AccessLog.objects.order_by("-pk")[: AccessLog.objects.count() - before]
    assert (row.user, row.action, row.object_ref) == (
        clinician,
        "dicomweb_retrieve",
        f"wado:{url.removeprefix('/dicomweb/')}",
    )
    assert row.patient == ramp.study.patient
    before = AccessLog.objects.count()
    assert clinician_client.get(url, HTTP_ACCEPT="image/gif").status_code == 406
    assert AccessLog.objects.count() == before


def test_an_object_without_pixels_is_not_rendered(clinician_client, practice):
    ds = intraoral(patient_id="1001")
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated"):
        delattr(ds, keyword)
    found = ingest_dataset(practice, ds)
    response = clinician_client.get(f"{instance_url(found)}/rendered")
    assert response.status_code == 406 and "no pixel data" in response.json()["detail"]


def test_choose_media_type_and_parse_parameters():
    assert rendered.choose_media_type("") == "image/jpeg"
    assert rendered.choose_media_type("image/png;q=0") is None
    assert rendered.choose_media_type('multipart/related; type="image/png"') is None
    assert (
        rendered.choose_media_type('multipart/related; type="image/png"', multipart=True)
        == "image/png"
    )
    p = rendered.parse_parameters({"window": ["40,400,sigmoid"], "viewport": ["10,20,,,5,5"]})
    assert (p.window.center, p.window.width, p.window.function) == (40, 400, "SIGMOID")
    assert p.viewport == rendered.Viewport(10, 20, 0, 0, 5, 5)
    assert rendered.parse_frames("3,1,3") == [3, 1]
