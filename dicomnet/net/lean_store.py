"""C-STORE received without pynetdicom's per-message machinery (issue 12).

On an association whose accepted contexts are all Verification or storage, the DUL thread
(``reactor.EventDrivenDUL``) hands each P-DATA-TF PDU to a ``LeanStore`` instead of
pynetdicom's PDU objects, state machine, DIMSE message assembly and association thread:

1. a C-STORE-RQ's command set is read once its last fragment is in (by hand,
   ``commands.read_command``; by pydicom, as pynetdicom does, when that cannot); its data
   set fragments go straight into an ``IncomingFile`` (hashed as they are written) behind
   the File Meta that pynetdicom would write;
2. on the last fragment, the store service's answerer runs in this thread (the service
   module's ``LEAN_STORE_ANSWER``, ``dicomnet.ingest.scp.answer_store``, which the listener
   installs here), with the same contract as pynetdicom's handler: the answer is sent only
   once the object is durable (``dicomnet.ingest.store``). Without one, no association
   takes this path;
3. the C-STORE-RSP is encoded by hand (``dicomnet.dimse.commands``) and written to the
   socket as one P-DATA-TF.

Anything else (a C-ECHO, a command that is not a plain C-STORE-RQ on a storage context,
a data set with no command before it) is handed to pynetdicom's DIMSE provider as the
P-DATA primitives its state machine would have made, so it is answered as before.
Fragments out of order (a command inside a data set, a data set on another context) abort
the association with a log line that says why; PDV items that do not tile their PDU go to
pynetdicom's decoder, which refuses them as before. The PDU reading
itself is the DUL's: the length guard, the deadlines and TLS are unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import decode
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import Verification, uid_to_service_class

from dicomnet.dimse import commands
from dicomnet.net import incoming
from nexrel import logs

log = logging.getLogger("dicomnet.net.lean_store")

C_STORE_RQ = 0x0001


# (association, sop_class_uid=, sop_instance_uid=, path=) -> the status to answer with
StoreAnswer = Callable[..., int]
_answer_store: StoreAnswer | None = None


def install(answer: StoreAnswer | None) -> None:
    """The store service's answerer (``listener.make_servers``); ``None``: no lean path."""
    global _answer_store
    _answer_store = answer


class ProtocolError(Exception):
    """The P-DATA broke PS3.8 or PS3.7: the association is aborted."""


@dataclass
class _Receiving:
    """A C-STORE-RQ whose data set is arriving."""

    context_id: int
    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    file: incoming.IncomingFile


def storage_only(assoc: Any) -> bool:
    """Every accepted context is Verification or a storage SOP class, with us as SCP."""
    contexts = list(assoc._accepted_cx.values())
    return (
        _answer_store is not None
        and bool(contexts)
        and all(_is_storage_or_echo(cx) for cx in contexts)
    )


def _is_storage_or_echo(cx: Any) -> bool:
    abstract = str(cx.abstract_syntax)
    if abstract == str(Verification):
        return True
    return issubclass(uid_to_service_class(abstract), StorageServiceClass) and bool(cx.as_scp)


class LeanStore:
    """The P-DATA of one association, from the DUL thread (one at a time: no lock)."""

    def __init__(self, dul: Any) -> None:
        self.dul = dul
        self.assoc = dul.assoc
        self._command: list[tuple[int, int, bytes]] = []  # (context, control, fragment)
        self._forwarding = False  # the current message is pynetdicom's, to its last fragment
        self._receiving: _Receiving | None = None
        self.used_database = False
        logs.bind(
            association_id=getattr(self.assoc, "nexrel_id", ""),
            peer=str(getattr(self.assoc.requestor, "address", "") or ""),
        )

    # ---------------------------------------------------------------- P-DATA-TF
    def receive(self, items: list[tuple[int, int, memoryview]]) -> None:
        """One P-DATA-TF PDU's PDV items, as ``pdv_items`` split them."""
        for context_id, control, data in items:
            self._fragment(context_id, control, data)

    def _fragment(self, context_id: int, control: int, data: memoryview) -> None:
        receiving = self._receiving
        if receiving is not None:
            if control & commands.COMMAND:
                raise ProtocolError("a command fragment arrived inside a C-STORE's data set")
            if context_id != receiving.context_id:
                raise ProtocolError(
                    f"a data set fragment on context {context_id}, the C-STORE's is "
                    f"{receiving.context_id}"
                )
            receiving.file.write(data)
            if control & commands.LAST:
                self._receiving = None
                self._answer(receiving)
            return
        if self._forwarding:
            self._forward(context_id, control, data)
            if not control & commands.COMMAND and control & commands.LAST:
                self._forwarding = False
            return
        if not control & commands.COMMAND:  # a data set with no command: pynetdicom's to judge
            self._forward(context_id, control, data)
            return
        self._command.append((context_id, control, bytes(data)))
        if control & commands.LAST:
            self._command_complete()

    def _command_complete(self) -> None:
        fragments, self._command = self._command, []
        context_id = fragments[-1][0]
        command = decode_command(b"".join(f for _, _, f in fragments))
        receiving = self._start(context_id, command) if command is not None else None
        if receiving is not None:
            self._receiving = receiving
            return
        for cx, control, fragment in fragments:
            self._forward(cx, control, memoryview(fragment))
        self._forwarding = command is not None and command.has_data_set

    def _start(self, context_id: int, command: commands.Command) -> _Receiving | None:
        """A ``_Receiving`` for a plain C-STORE-RQ on a storage context, else ``None``."""
        assoc = self.assoc
        cx = assoc._accepted_cx.get(context_id)
        if (
            command.command_field != C_STORE_RQ
            or not command.has_data_set
            or cx is None
            or str(cx.abstract_syntax) == str(Verification)
            or command.affected_sop_class_uid != str(cx.abstract_syntax)
            or command.message_id is None
            or not command.affected_sop_instance_uid
            or assoc._sent_release
        ):
            return None
        sop_class, sop_instance = command.affected_sop_class_uid, command.affected_sop_instance_uid
        received = incoming.IncomingFile(suffix=".dcm")
        received.write(file_meta(sop_class, sop_instance, str(cx.transfer_syntax[0])))
        return _Receiving(
            context_id=context_id,
            message_id=command.message_id,
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            file=received,
        )

    def _forward(self, context_id: int, control: int, data: memoryview) -> None:
        """To pynetdicom's DIMSE provider, as its DT-2 action would (same thread)."""
        primitive = P_DATA()
        pdv: Any = [context_id, bytes([control]) + bytes(data)]  # pynetdicom checks: a list
        primitive.presentation_data_value_list = [pdv]
        self.assoc.dimse.receive_primitive(primitive)

    # ---------------------------------------------------------------- the answer
    def _answer(self, receiving: _Receiving) -> None:
        answer_store = cast(StoreAnswer, _answer_store)  # storage_only() checked it
        path = Path(receiving.file.name)
        timer = self.dul._idle_timer
        timer.stop()  # the association thread must not time out a store in progress
        try:
            self.used_database = True
            result = answer_store(
                self.assoc,
                sop_class_uid=receiving.sop_class_uid,
                sop_instance_uid=receiving.sop_instance_uid,
                path=path,
            )
        except Exception:  # answer_store answers every failure itself; as pynetdicom does
            log.exception("C-STORE %s: handler failure", receiving.sop_instance_uid)
            result = 0xC211
            with contextlib.suppress(OSError):
                os.unlink(path)
        finally:
            timer.restart()
        if self.assoc.is_aborted or self.dul.state_machine.current_state != "Sta6":
            return  # aborted meanwhile: no answer, as pynetdicom
        self.dul.socket.send(
            commands.p_data_tf(
                commands.pdv(
                    receiving.context_id,
                    commands.COMMAND | commands.LAST,
                    commands.store_response(
                        message_id=receiving.message_id,
                        sop_class_uid=receiving.sop_class_uid,
                        sop_instance_uid=receiving.sop_instance_uid,
                        status=result,
                    ),
                )
            )
        )

    def discard(self) -> None:
        """The association ended mid-object: remove the partial file (never acknowledged)."""
        receiving, self._receiving = self._receiving, None
        if receiving is not None:
            incoming.take_received(receiving.file.name)
            with contextlib.suppress(OSError):
                os.unlink(receiving.file.name)


def decode_command(raw: bytes) -> commands.Command | None:
    """A command set's routing elements: read by hand (``commands.read_command``), or by
    pydicom as pynetdicom would when that cannot; ``None`` when neither can."""
    command = commands.read_command(raw)
    if command is not None:
        return command
    try:  # pynetdicom decodes it again and answers or aborts as it does
        ds = decode(BytesIO(raw), True, True)
        return commands.Command(
            command_field=_us(ds.get("CommandField")),
            message_id=_us(ds.get("MessageID")),
            data_set_type=_us(ds.get("CommandDataSetType")),
            affected_sop_class_uid=str(ds.get("AffectedSOPClassUID") or ""),
            affected_sop_instance_uid=str(ds.get("AffectedSOPInstanceUID") or ""),
        )
    except Exception:
        return None


def _us(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def pdv_items(pdu_body: bytes | bytearray) -> list[tuple[int, int, memoryview]] | None:
    """A P-DATA-TF's items (context ID, message control header, fragment), or ``None`` when
    they do not tile the PDU exactly: pynetdicom then decodes it, and refuses it, in its words.
    """
    view = memoryview(pdu_body)
    items, offset, end = [], 0, len(view)
    while offset < end:
        if end - offset < 6:
            return None
        (length,) = struct.unpack_from(">L", view, offset)
        if length < 2 or offset + 4 + length > end:
            return None
        items.append((view[offset + 4], view[offset + 5], view[offset + 6 : offset + 4 + length]))
        offset += 4 + length
    return items or None


# -------------------------------------------------------------------- encoding
def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, "DICM" and the File Meta group, as pynetdicom's ``create_file_meta`` and
    pydicom's ``write_file_meta_info`` write them (tested byte for byte), in microseconds."""
    elements = b"".join(
        _explicit(element, vr, value)
        for element, vr, value in (
            (0x0001, b"OB", b"\x00\x01"),
            (0x0002, b"UI", commands.uid(sop_class_uid)),
            (0x0003, b"UI", commands.uid(sop_instance_uid)),
            (0x0010, b"UI", commands.uid(transfer_syntax_uid)),
            (0x0012, b"UI", commands.uid(str(PYNETDICOM_IMPLEMENTATION_UID))),
            (0x0013, b"SH", commands.even(PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii"), b" ")),
        )
    )
    group_length = _explicit(0x0000, b"UL", struct.pack("<L", len(elements)))
    return b"\0" * 128 + b"DICM" + group_length + elements


def _explicit(element: int, vr: bytes, value: bytes) -> bytes:
    """A group 0002 element, Explicit VR Little Endian (PS3.5 7.1.2)."""
    if vr == b"OB":
        return struct.pack("<HH2s2xL", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value
