"""Browser upload: .dcm files or a zip of them, through the same ingest path as C-STORE."""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _

from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import IngestError, store_instance

if TYPE_CHECKING:
    from patients.decorators import PracticeUser

log = logging.getLogger("dicomnet.ingest.uploads")


@dataclass
class UploadResult:
    name: str
    ok: bool
    message: str
    instance_id: int | None = None


def ingest_upload(name: str, fileobj: IO[bytes], *, user: PracticeUser) -> list[UploadResult]:
    """Ingest one uploaded file; a zip is opened and each member ingested."""
    if zipfile.is_zipfile(fileobj):
        fileobj.seek(0)
        return list(_ingest_zip(name, fileobj, user=user))
    fileobj.seek(0)
    return [_ingest_one(name, src=fileobj, user=user)]


def _ingest_zip(name: str, fileobj: IO[bytes], *, user: PracticeUser) -> Iterable[UploadResult]:
    budget = settings.NEXREL_UPLOAD_MAX_BYTES
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        yield UploadResult(name, False, _("damaged zip file: %(error)s") % {"error": exc})
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        members = [m for m in members if not m.filename.startswith("__MACOSX/")]
        if sum(m.file_size for m in members) > budget:
            yield UploadResult(
                name, False, _("zip expands beyond %(budget)d bytes; refused") % {"budget": budget}
            )
            return
        if not members:
            yield UploadResult(name, False, _("the zip file is empty"))
            return
        for position, member in enumerate(members, start=1):
            member_name = f"{name}/{member.filename}"
            try:
                with archive.open(member) as src:
                    result = _ingest_one(member_name, src=src, user=user, position=position)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                # Raised while reading (a CRC is checked at the member's end): report this
                # member and go on with the others.
                result = UploadResult(
                    member_name, False, _("damaged zip member: %(error)s") % {"error": exc}
                )
            yield result


def _ingest_one(
    name: str, *, src: IO[bytes], user: PracticeUser, position: int = 1
) -> UploadResult:
    path: Path | None = None
    try:
        path = copy_into_spool_tmp(src)
        outcome = store_instance(
            path,
            practice=user.practice,
            server=None,
            calling_ae="",
            peer_address=f"upload by {user.username}"[:64],
            position=position,
        )
    except IngestError as exc:
        message = str(exc)
        if "not a readable DICOM" in message:
            message = _("not a DICOM file")
        return UploadResult(name, False, message)
    except OSError as exc:
        log.error("upload %s: cannot write spool: %s", name, exc)
        return UploadResult(name, False, _("the server could not store the file; try again"))
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if outcome.duplicate:
        return UploadResult(name, True, _("already received (identical)"), outcome.instance.pk)
    if outcome.conflict:
        message = _("received (same UID as an earlier image, kept as a new version)")
    else:
        message = _("received")
    return UploadResult(name, True, message, outcome.instance.pk)
