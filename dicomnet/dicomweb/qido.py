"""QIDO-RS, the Search transaction (PS3.18 §10.6): query parameters to matches in DICOM JSON.

A search becomes the C-FIND identifier the query/retrieve SCP reads (``parse_identifier``,
QueryRetrieveLevel STUDY, SERIES or IMAGE, the study and series UIDs of the path as keys),
so QIDO-RS and C-FIND match the same way (``dicomnet.dimse.matching``) and select the same
rows (``dicomnet.qr.matching``); the answers are ``dicomnet.qr.responses``'s, written as
DICOM JSON (PS3.18 F.2) instead of a DIMSE data set.

- Matching keys, by keyword or tag (``PatientName=cote*``, ``00100010=cote*``): each
  resource takes the keys of its level and of the levels its path leaves open
  (``/series`` the study and series keys, ``/studies/{study}/series`` the series keys).
  UI and CS keys take lists, comma-separated or repeated; other keys a single value.
- ``includefield`` (repeated or comma-separated; ``all``) adds attributes to the level's
  defaults (PS3.18 Table 10.6.3-3/4/5) when Nexrel holds them; those it does not hold are
  named in a ``Warning`` header (299) rather than refused.
- ``limit`` and ``offset``; at most ``MAX_LIMIT`` answers per response, a ``Warning`` says
  when more are left.
- ``fuzzymatching``: accepted; PatientName matching is always accent- and case-folded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from pydicom import Dataset, config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement

from dicomnet.dimse.matching import MalformedIdentifier
from dicomnet.dimse.uids import is_valid_uid
from dicomnet.qr.matching import QrQuery, parse_identifier
from dicomnet.qr.responses import add_keys, level_answers

MAX_LIMIT = 1000  # answers per response, whatever ``limit`` asks

# Matching keys Nexrel matches (dicomnet.qr.matching's table), per level.
STUDY_KEYS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "StudyInstanceUID", "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
)  # fmt: skip
SERIES_KEYS = (
    "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "BodyPartExamined",
)  # fmt: skip
INSTANCE_KEYS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber")

# Default return attributes (PS3.18 Table 10.6.3-3, -4, -5) that Nexrel can answer, even
# if empty (ReferringPhysicianName, StudyID: Nexrel does not index them).
STUDY_RETURN = (
    "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
    "ReferringPhysicianName", "RetrieveURL", "PatientName", "PatientID", "PatientBirthDate",
    "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)  # fmt: skip
SERIES_RETURN = (
    "Modality", "SeriesDescription", "RetrieveURL", "SeriesInstanceUID", "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
)  # fmt: skip
INSTANCE_RETURN = (
    "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL", "InstanceNumber",
    "Rows", "Columns", "NumberOfFrames",
)  # fmt: skip

KEYS = {"study": STUDY_KEYS, "series": SERIES_KEYS, "instance": INSTANCE_KEYS}
RETURNS = {"study": STUDY_RETURN, "series": SERIES_RETURN, "instance": INSTANCE_RETURN}
LIST_VRS = ("UI", "CS")  # keys that take a list of values
CONTROL = ("limit", "offset", "includefield", "fuzzymatching")
_TAG = re.compile(r"[0-9A-Fa-f]{8}")


@dataclass(frozen=True)
class Resource:
    """A search resource: its QueryRetrieveLevel and the levels whose keys it takes."""

    name: str
    level: str
    levels: tuple[str, ...]


RESOURCES = {
    r.name: r
    for r in (
        Resource("studies", "STUDY", ("study",)),
        Resource("series", "SERIES", ("study", "series")),
        Resource("study_series", "SERIES", ("series",)),
        Resource("instances", "IMAGE", ("study", "series", "instance")),
        Resource("study_instances", "IMAGE", ("series", "instance")),
        Resource("series_instances", "IMAGE", ("instance",)),
    )
}


class BadSearch(ValueError):
    """The search can't be answered as asked: a 400, with this message."""


@dataclass(frozen=True)
class Search:
    resource: Resource
    query: QrQuery
    defaults: tuple[str, ...]  # keywords always answered
    included: tuple[str, ...]  # includefield keywords, answered when Nexrel holds them
    include_all: bool = False
    limit: int = MAX_LIMIT
    offset: int = 0
    study_uid: str = ""
    series_uid: str = ""


@dataclass
class Page:
    answers: list[dict] = field(default_factory=list)  # DICOM JSON objects
    more: bool = False  # matches left beyond limit
    not_held: set[str] = field(default_factory=set)  # includefield keywords Nexrel lacks
    study_uids: set[str] = field(default_factory=set)


def _attribute(name: str) -> tuple[int, str] | None:
    """(tag, keyword) of a keyword or an 8-digit tag of the data dictionary; None if neither."""
    if _TAG.fullmatch(name):
        tag = int(name, 16)
        keyword = keyword_for_tag(tag)
        return (tag, keyword) if keyword else None
    found = tag_for_keyword(name)
    return (found, name) if found is not None else None


def _vr(tag: int) -> str:
    return dictionary_VR(tag).split(" or ")[0]


def _count(params: Mapping[str, Sequence[str]], name: str, default: int) -> int:
    given = params.get(name) or []
    if len(given) > 1:
        raise BadSearch(f"{name} is given more than once")
    if not given:
        return default
    if not given[0].isdigit():
        raise BadSearch(f"{name} must be a non-negative integer, not {given[0]!r}")
    return int(given[0])


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_search(
    resource: Resource,
    params: Mapping[str, Sequence[str]],
    *,
    study_uid: str = "",
    series_uid: str = "",
) -> Search:
    """The search's path UIDs and query parameters (name -> every value given) as a Search."""
    for name, uid in (("study", study_uid), ("series", series_uid)):
        if uid and not is_valid_uid(uid):
            raise BadSearch(f"the {name} UID {uid!r} of the path is not a UID")
    fuzzy = _split(params.get("fuzzymatching") or [])
    if any(v.lower() not in ("true", "false") for v in fuzzy) or len(fuzzy) > 1:
        raise BadSearch("fuzzymatching must be true or false")
    limit = min(_count(params, "limit", MAX_LIMIT), MAX_LIMIT)
    offset = _count(params, "offset", 0)

    allowed = {keyword for level in resource.levels for keyword in KEYS[level]}
    identifier = Dataset()
    identifier.QueryRetrieveLevel = resource.level
    for name, given in params.items():
        if name in CONTROL:
            continue
        attribute = _attribute(name)
        if attribute is None:
            raise BadSearch(f"unknown query parameter {name!r}")
        tag, keyword = attribute
        if keyword not in allowed:
            raise BadSearch(f"{keyword} ({name}) is not a matching key of this resource")
        if tag in identifier:
            raise BadSearch(f"{keyword} is given twice (as a keyword and as a tag)")
        vr = _vr(tag)
        if vr in LIST_VRS:
            value: object = _split(given)
        elif len(given) > 1:
            raise BadSearch(f"{keyword} takes a single value or range")
        else:
            value = given[0] if given else ""
        try:
            identifier.add(DataElement(tag, vr, value, validation_mode=config.IGNORE))
        except (TypeError, ValueError) as exc:  # pydicom's IS, DS... refuse the text
            raise BadSearch(f"{keyword}: {value!r} is not a valid {vr} value") from exc
    if study_uid:
        identifier.StudyInstanceUID = study_uid
    if series_uid:
        identifier.SeriesInstanceUID = series_uid
    try:
        query = parse_identifier(identifier, patient_root=False)
    except MalformedIdentifier as exc:
        raise BadSearch(str(exc)) from exc

    include_all = False
    included: list[str] = []
    for name in _split(params.get("includefield") or []):
        if name.lower() == "all":
            include_all = True
            continue
        attribute = _attribute(name)
        if attribute is None:
            raise BadSearch(f"includefield: unknown attribute {name!r}")
        included.append(attribute[1])
    asked = tuple(keyword_for_tag(tag) for tag, _ in query.keys)  # matched keys are answered
    defaults = tuple(k for level in resource.levels for k in RETURNS[level]) + asked
    return Search(
        resource=resource,
        query=query,
        defaults=tuple(dict.fromkeys(defaults)),
        included=tuple(k for k in dict.fromkeys(included) if k not in defaults),
        include_all=include_all,
        limit=limit,
        offset=offset,
        study_uid=study_uid,
        series_uid=series_uid,
    )


def retrieve_url(base: str, values: Mapping[str, object], level: str) -> str:
    """The WADO-RS URL of the answer's resource, under ``base`` (".../dicomweb/studies")."""
    url = f"{base}/{values.get('StudyInstanceUID', '')}"
    if level in ("SERIES", "IMAGE"):
        url += f"/series/{values.get('SeriesInstanceUID', '')}"
    if level == "IMAGE":
        url += f"/instances/{values.get('SOPInstanceUID', '')}"
    return url


def _keys(keywords: list[str]) -> list[tuple[int, str]]:
    keys = []
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is not None:
            keys.append((tag, _vr(tag)))
    return keys


def run_search(search: Search, *, practice_id: int, studies_url: str) -> Page:
    """One page of the practice's matches, each as a DICOM JSON object (PS3.18 F.2)."""
    page = Page()
    level = search.resource.level
    matches = level_answers(search.query, practice_id=practice_id)
    window = list(islice(matches, search.offset, search.offset + search.limit + 1))
    page.more = len(window) > search.limit
    for values in window[: search.limit]:
        values = {
            **values,
            "InstanceAvailability": "ONLINE",
            "RetrieveURL": retrieve_url(studies_url, values, level),
        }
        keywords = list(search.defaults)
        for keyword in search.included:
            if keyword in values:
                keywords.append(keyword)
            else:
                page.not_held.add(keyword)
        if search.include_all:
            keywords += [k for k in values if k not in keywords]
        ds = add_keys(Dataset(), values, _keys(keywords), retrieve_ae="")
        page.answers.append(ds.to_json_dict())
        page.study_uids.add(str(values.get("StudyInstanceUID", "")))
    return page
