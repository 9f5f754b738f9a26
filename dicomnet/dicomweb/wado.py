"""WADO-RS, the Retrieve transaction (PS3.18 §10.4): stored objects and their metadata.

- ``select_instances``: the instances of a study, a series or one instance of the practice,
  chosen as C-MOVE and C-GET choose them (``dicomnet.qr.matching.matching_instances``:
  processed, the latest version of each SOP instance); ``NotFound`` when there are none.
- ``negotiate``: whether the ``Accept`` of a retrieve can be answered with the bytes as
  stored (Nexrel does not transcode); the 406 message otherwise.
- ``multipart_body``: the ``multipart/related; type="application/dicom"`` body, streamed:
  each stored object is read from storage in ``CHUNK`` pieces between the boundaries.
- ``instance_metadata``: one instance's DICOM JSON (PS3.18 F.2), with each large value
  (Pixel Data, big OB/OW/UN... and long UT/LT/UC text) replaced by a ``BulkDataURI``
  under the instance's URL (``.../bulkdata/<tag>``; not served yet).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.files.storage import default_storage
from django.utils.http import parse_header_parameters
from pydicom import Dataset, dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement

from dicomnet.dimse.uids import is_valid_uid
from dicomnet.models import DicomInstance
from dicomnet.qr.matching import matching_instances, parse_identifier

DICOM = "application/dicom"
CHUNK = 64 * 1024  # bytes read from storage and written to the response at a time
# pydicom's measure: the length of the base64-encoded value, so binary values of more than
# 768 bytes (1 KiB once encoded) become a BulkDataURI; text values of more than 768 bytes too.
BULK_DATA_THRESHOLD = 1024
BULK_TEXT_BYTES = (BULK_DATA_THRESHOLD // 4) * 3
BULK_TEXT_VRS = ("UT", "LT", "UC")  # text VRs PS3.18 F.2.2 lets be bulk data
BULK_VRS = (*BULK_TEXT_VRS, "OB", "OW", "OF", "OD", "OL", "OV", "UN")
ANY_DICOM_TYPE = (DICOM, "application/*", "*/*")


class BadRetrieve(ValueError):
    """A UID of the path is not a UID: a 400, with this message."""


class NotFound(LookupError):
    """The practice holds nothing under the path: a 404 (never 403)."""


@dataclass(frozen=True)
class Target:
    """What a retrieve names: a study, a series of it, or one instance of that series."""

    study: str
    series: str = ""
    instance: str = ""

    @property
    def level(self) -> str:
        return "IMAGE" if self.instance else "SERIES" if self.series else "STUDY"


def parse_target(study: str, series: str = "", instance: str = "") -> Target:
    for name, uid in (("study", study), ("series", series), ("instance", instance)):
        if uid and not is_valid_uid(uid):
            raise BadRetrieve(f"the {name} UID {uid!r} of the path is not a UID")
    return Target(study, series, instance)


def select_instances(target: Target, *, practice_id: int) -> list[DicomInstance]:
    """The practice's processed instances under ``target``, the latest version of each SOP
    instance (the rule of C-MOVE and C-GET), by series and InstanceNumber."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = target.level
    identifier.StudyInstanceUID = target.study
    if target.series:
        identifier.SeriesInstanceUID = target.series
    if target.instance:
        identifier.SOPInstanceUID = target.instance
    query = parse_identifier(identifier, patient_root=False)
    instances = matching_instances(query, practice_id=practice_id)
    if not instances:
        what = {"STUDY": "study", "SERIES": "series", "IMAGE": "instance"}[target.level]
        raise NotFound(f"no such {what}")
    return instances


# ---------------------------------------------------------------------- negotiation


def media_ranges(accept: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(type/subtype, parameters) of each media range with a quality above 0."""
    for token in accept.split(","):
        if not token.strip():
            continue
        media_type, params = parse_header_parameters(token)
        params = {k.lower(): v for k, v in params.items()}
        try:
            if float(params.get("q", "1")) <= 0:
                continue
        except ValueError:
            pass
        yield media_type.lower(), params


def negotiate(accept: str, stored_syntaxes: Iterable[str]) -> str | None:
    """None if ``accept`` takes the objects as stored; otherwise why not (the 406 message).

    Taken: no Accept, ``*/*``, ``multipart/*``, or ``multipart/related`` of type
    ``application/dicom`` (the default when no type is given) with no ``transfer-syntax``,
    ``transfer-syntax=*`` or the transfer syntax every selected object is stored in.
    """
    stored = set(stored_syntaxes)
    asked_syntaxes: list[str] = []
    for media_type, params in media_ranges(accept or "*/*"):
        if media_type in ("*/*", "multipart/*"):
            return None
        if media_type != "multipart/related":
            continue
        if params.get("type", DICOM).lower() not in ANY_DICOM_TYPE:
            continue
        syntax = params.get("transfer-syntax", "*")
        if syntax == "*" or stored == {syntax}:
            return None
        asked_syntaxes.append(syntax)
    if asked_syntaxes:
        held = ", ".join(sorted(s or "unknown" for s in stored))
        return (
            f"transcoding is not supported yet: the objects are stored as {held}, not "
            f"{', '.join(asked_syntaxes)}; ask for transfer-syntax=* (or none) to get them"
        )
    return f'this resource answers multipart/related; type="{DICOM}" only'


# ---------------------------------------------------------------------- multipart


def new_boundary() -> str:
    return f"nexrel-{uuid.uuid4().hex}"


def multipart_content_type(boundary: str) -> str:
    return f'multipart/related; type="{DICOM}"; boundary={boundary}'


def open_stored(instance: DicomInstance) -> IO[bytes]:
    """The stored object's bytes, as received, from the default storage (local or S3)."""
    if not instance.storage_key:
        raise FileNotFoundError(f"instance {instance.pk} has no stored object")
    return default_storage.open(instance.storage_key, "rb")


def multipart_body(
    instances: Iterable[DicomInstance], boundary: str, *, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The multipart/related body (RFC 2387), one part per instance, its bytes as stored.

    A generator: each object is opened only when its part comes and read ``chunk`` bytes at
    a time, so a study is never held in memory. A storage error after the first part can
    only cut the body short (the status is sent): the client sees no closing boundary.
    """
    for instance in instances:
        part_type = DICOM
        if instance.transfer_syntax_uid:
            part_type += f"; transfer-syntax={instance.transfer_syntax_uid}"
        yield f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("ascii")
        with open_stored(instance) as stored:
            while data := stored.read(chunk):
                yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def related_body(parts: Iterable[tuple[str, bytes]], boundary: str) -> Iterator[bytes]:
    """A multipart/related body of ``(content type, bytes)`` parts, one part at a time."""
    for part_type, data in parts:
        yield f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("ascii")
        yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


# ---------------------------------------------------------------------- metadata


def _element_paths(ds: Dataset, prefix: tuple[str, ...] = ()) -> Iterator[tuple[DataElement, str]]:
    """Each element of ``ds``, nested ones too, with its path: ``7FE00010``, or
    ``00540016/0/00181072`` (sequence tag / item index from 0 / tag) inside a sequence."""
    for elem in ds:
        path = (*prefix, f"{elem.tag:08X}")
        yield elem, "/".join(path)
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                yield from _element_paths(item, (*path, str(index)))


def _set_at(tree: dict[str, Any], path: str, value: dict[str, Any]) -> None:
    *parents, last = path.split("/")
    node = tree
    for tag, index in zip(parents[::2], parents[1::2], strict=True):
        node = node[tag]["Value"][int(index)]
    if last in node:  # left out when pydicom could not encode it
        node[last] = value


def dataset_metadata(ds: Dataset, instance_url: str) -> dict[str, Any]:
    """``ds`` as DICOM JSON, its large values as ``<instance_url>/bulkdata/<path>``."""
    paths: dict[int, str] = {}
    long_texts: list[tuple[str, str]] = []
    for elem, path in _element_paths(ds):
        paths[id(elem)] = path
        if elem.VR in BULK_TEXT_VRS and not elem.is_empty:
            size = len(str(elem.value).encode("utf-8"))
            if size > BULK_TEXT_BYTES:
                long_texts.append((path, elem.VR))

    def bulk_data_uri(elem: DataElement) -> str:
        return f"{instance_url}/bulkdata/{paths.get(id(elem), f'{elem.tag:08X}')}"

    tree = ds.to_json_dict(
        bulk_data_threshold=BULK_DATA_THRESHOLD,
        bulk_data_element_handler=bulk_data_uri,
        suppress_invalid_tags=True,
    )
    for path, vr in long_texts:
        _set_at(tree, path, {"vr": vr, "BulkDataURI": f"{instance_url}/bulkdata/{path}"})
    return tree


PIXEL_DATA = 0x7FE00010


def _bulk_vr(ds: Dataset, elem: DataElement | RawDataElement) -> str:
    if elem.VR and " or " not in elem.VR:
        return elem.VR
    if elem.tag == PIXEL_DATA:  # implicit VR: OB when encapsulated or 8-bit, else OW
        return "OW" if int(ds.get("BitsAllocated", 16) or 16) > 8 else "OB"
    return dictionary_VR(elem.tag).split(" or ")[0]


def instance_metadata(instance: DicomInstance, instance_url: str) -> dict[str, Any]:
    """The stored object's data set (without its file meta) as DICOM JSON.

    Large top-level values are not read at all (``defer_size``), nor is Pixel Data in any
    form: they become BulkDataURIs without their bytes being read and base64-encoded (most
    of a CBCT series' metadata time went there).
    """
    with open_stored(instance) as stored:
        ds = dcmread(stored, defer_size=BULK_DATA_THRESHOLD)
        unread: dict[int, str] = {}
        for tag in list(ds.keys()):
            elem = ds.get_item(tag)
            deferred = isinstance(elem, RawDataElement) and elem.value is None
            if tag != PIXEL_DATA and not deferred:
                continue
            vr = _bulk_vr(ds, elem)
            if tag == PIXEL_DATA or vr in BULK_VRS:
                unread[int(tag)] = vr
                del ds[tag]
        tree = dataset_metadata(ds, instance_url)
    for number, vr in unread.items():
        path = f"{number:08X}"
        tree[path] = {"vr": vr, "BulkDataURI": f"{instance_url}/bulkdata/{path}"}
    return dict(sorted(tree.items()))
