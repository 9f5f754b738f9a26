"""C-FIND answers encoded once and kept, for every C-FIND SCP (Q/R and MWL).

pynetdicom encodes each identifier a C-FIND handler yields (``pynetdicom.dsutils.encode``,
called by ``pynetdicom.service_class``); it takes a pydicom Dataset, never bytes. Building a
fresh Dataset and encoding it costs pydicom ~0.4 ms of CPU an answer. So an answer is
encoded once in the association's transfer syntax and kept as an ``EncodedAnswer``: the
Dataset read back from those bytes (raw elements, usable as any Dataset) and the bytes
themselves, which ``install`` lets pynetdicom send as they are (pydicom would still spend
~0.2 ms writing the raw elements out again).

Devices ask the same questions again and again (today's worklist, a patient's studies), so
the encoded answers are kept, least recently used out first. The key holds every input of
the answer (the answered values, the keys asked for, the character set, the transfer
syntax): a changed row, or another query shape, device profile or transfer syntax, is
another key and is encoded afresh. Nothing needs invalidating, which matters because some
writes bypass ``updated_at`` (``QuerySet.update`` in the ingest pipeline). A kept Dataset is
only ever read (pynetdicom writes it out as it is).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from io import BytesIO

from pydicom import Dataset
from pynetdicom import service_class
from pynetdicom.dsutils import decode, encode


class EncodedAnswer(Dataset):
    """A kept answer: its elements as read back from ``encoded``, in that encoding."""

    encoded: bytes
    encoding: tuple[bool, bool]  # (implicit VR, little endian)


def encode_identifier(
    ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> bytes | None:
    """``pynetdicom.dsutils.encode``, but a kept answer's own bytes when the encoding is its."""
    if (
        isinstance(ds, EncodedAnswer)
        and not deflated
        and ds.encoding == (is_implicit_vr, is_little_endian)
    ):
        return ds.encoded
    return encode(ds, is_implicit_vr, is_little_endian, deflated)


def install() -> None:
    """Let pynetdicom's C-FIND (and C-GET/C-MOVE) responses send kept answers' bytes."""
    service_class.encode = encode_identifier


class EncodedAnswers:
    """A bounded, thread-safe cache of answers as raw-element Datasets (module docstring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, EncodedAnswer] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        build: Callable[[], Dataset],
        *,
        implicit_vr: bool,
        little_endian: bool,
    ) -> EncodedAnswer:
        """The answer of ``key`` encoded for the transfer syntax; ``build()`` on a miss."""
        full_key = (key, implicit_vr, little_endian)
        with self._lock:
            cached = self._answers.get(full_key)
            if cached is not None:
                self._answers.move_to_end(full_key)
                return cached
        data = encode(build(), implicit_vr, little_endian)
        if data is None:  # pynetdicom logged pydicom's error
            raise ValueError(f"C-FIND answer {key!r:.200} could not be encoded")
        decoded = decode(BytesIO(data), implicit_vr, little_endian)
        raw = EncodedAnswer(decoded)  # the same elements
        raw.set_original_encoding(implicit_vr, little_endian, decoded.original_character_set)
        raw.encoded, raw.encoding = data, (implicit_vr, little_endian)
        with self._lock:
            self._answers[full_key] = raw
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return raw

    def __len__(self) -> int:
        return len(self._answers)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
