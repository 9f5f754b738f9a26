"""Accepted associations whose two threads wait for events instead of polling.

pynetdicom (3.0) runs two threads per association, and both poll: the DUL thread sleeps
1 ms whenever a pass found nothing to do (no PDU on the socket, no primitive to send), and
the association thread sleeps 1 ms before every look for a DIMSE message. A C-STORE waits
out both sleeps: the request is picked up late, then the response is sent late, and the
next request is read late; on a busy machine each wake-up can be later still. Here:

1. the DUL thread waits in ``select`` on its socket and on a wake-up socket that every
   put on its ``to_provider_queue`` (a response, a release, an abort) writes to;
2. the association thread waits on an ``Event`` that every put on its DIMSE message queue
   and on the DUL's ``to_user_queue`` (A-RELEASE, A-ABORT, the connection closing) sets;
3. both still wake every ``TIMER_CHECK`` seconds for what no put announces: the ARTIM
   and idle timers, the kill flag, the DUL thread ending.

Each loop is otherwise pynetdicom's own, step for step, so the state machine, the timers
and the hardening (``hardening.py``) behave as before. Only the associations this
listener accepts use it (``RequestHandler``); the SCUs keep pynetdicom's.

On a storage-only association (with DICOM_LEAN_STORE, ``listener.make_servers`` installs
the store service's answerer in ``lean_store``), the DUL thread gives each P-DATA-TF it
reads to ``lean_store.LeanStore``, which stores C-STOREs without pynetdicom's per-message
machinery and hands everything else back to pynetdicom. A C-FIND's pending answers go out
the same way (``send_pending_find``): their command set is encoded by hand and queued with
the answer's kept bytes as ready PDUs, which the DUL thread writes as they are.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from django.db import connections
from pynetdicom import _config, evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket
from pynetdicom.transport import RequestHandler as StockRequestHandler

from dicomnet.dimse import commands
from dicomnet.net import lean_store

log = logging.getLogger("dicomnet.net.reactor")
pynetdicom_log = logging.getLogger("pynetdicom.dul")  # where pynetdicom says the same

TIMER_CHECK = 0.05  # seconds: how late a timer, a kill or a dead DUL may be noticed


class WakingQueue(queue.Queue):
    """A ``queue.Queue`` that calls ``wake()`` after every put."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def _put(self, item: Any) -> None:
        super()._put(item)
        self._wake()


class PreparedPDUs(bytes):
    """P-DATA-TF PDUs already encoded, queued for the DUL thread to write as they are."""


class EventDrivenDUL(DULServiceProvider):
    """The DUL reactor, waiting on its socket and its outgoing queue instead of sleeping."""

    def __init__(self, assoc: Association, wake_association: Callable[[], None]) -> None:
        super().__init__(assoc)
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self.to_provider_queue = WakingQueue(self.wake)
        self.to_user_queue = WakingQueue(wake_association)
        # None: not yet known (decided once established); False: pynetdicom's path.
        self._lean: lean_store.LeanStore | bool | None = None

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # already full (it will wake), or closed (done)
            self._wake_send.send(b"\0")

    def kill_dul(self) -> None:
        self._kill_thread = True
        self.wake()

    def stop_dul(self) -> bool:
        if self.state_machine.current_state == "Sta1":
            self._kill_thread = True
            self.wake()
            while self.is_alive():
                time.sleep(self._run_loop_delay)
            return True
        return False

    def _wait_for_work(self) -> None:
        """Return once the socket is readable, a primitive is queued, or a timer is due."""
        assoc_sock = self.socket
        sock = assoc_sock.socket if assoc_sock is not None else None
        if (
            assoc_sock is None
            or sock is None
            or sock.fileno() == -1
            or not assoc_sock._is_connected
        ):
            time.sleep(self._run_loop_delay)  # not connected (yet, or any more): as pynetdicom
            return
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted bytes already buffered: select would not see them
        if self.to_provider_queue.qsize():
            return
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile: the loop sees it
            select.select([sock, self._wake_recv], [], [], TIMER_CHECK)
        with contextlib.suppress(OSError):
            while self._wake_recv.recv(4096):
                pass

    def run_reactor(self) -> None:
        """pynetdicom's ``DULServiceProvider.run_reactor``, waiting where it sleeps."""
        try:
            self._run_reactor()
        finally:
            self._wake_send.close()
            self._wake_recv.close()
            if isinstance(self._lean, lean_store.LeanStore):
                self._lean.discard()
                if self._lean.used_database:
                    connections.close_all()  # this thread's: the association's are closed apart

    def _process_recv_primitive(self) -> bool:
        """pynetdicom's, but ``PreparedPDUs`` are written at once (P-DATA in Sta6 is DT-1,
        which only sends), and dropped in any other state, where no P-DATA may go."""
        try:
            head = self.to_provider_queue.queue[0]
        except IndexError:
            return False
        if not isinstance(head, PreparedPDUs):
            return super()._process_recv_primitive()
        self.to_provider_queue.get()
        if self.state_machine.current_state == "Sta6":
            cast(AssociationSocket, self.socket).send(head)
        return True

    def _lean_store(self) -> lean_store.LeanStore | None:
        """This association's ``LeanStore`` once established, if it is storage-only."""
        if self._lean is None and self.state_machine.current_state == "Sta6":
            self._lean = (
                lean_store.LeanStore(self) if lean_store.storage_only(self.assoc) else False
            )
        return self._lean if isinstance(self._lean, lean_store.LeanStore) else None

    def _read_pdu_data(self) -> None:
        """pynetdicom's ``_read_pdu_data``, step for step, but a P-DATA-TF in Sta6 of a
        storage-only association goes to its ``LeanStore`` instead of the state machine."""
        sock = cast(AssociationSocket, self.socket)
        try:
            header = sock.recv(6)
        except (OSError, TimeoutError) as exc:
            pynetdicom_log.error("Connection closed before the entire PDU was received")
            pynetdicom_log.exception(exc)
            self.event_queue.put("Evt17")
            return
        try:
            pdu_type, _, pdu_length = struct.unpack(">BBL", header)
        except struct.error:
            self.event_queue.put("Evt17")
            return
        if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            pynetdicom_log.error(f"Unknown PDU type received '0x{pdu_type:02X}'")
            self.event_queue.put("Evt19")
            return
        try:
            body = sock.recv(pdu_length)
        except (OSError, TimeoutError) as exc:
            pynetdicom_log.error("Connection closed before the entire PDU was received")
            pynetdicom_log.exception(exc)
            self.event_queue.put("Evt17")
            return
        if len(body) != pdu_length:
            pynetdicom_log.error(
                f"The received PDU is shorter than expected ({6 + len(body)} of "
                f"{6 + pdu_length} bytes received)"
            )
            self.event_queue.put("Evt17")
            return
        lean = self._lean_store() if pdu_type == 0x04 else None
        items = lean_store.pdv_items(body) if lean is not None else None
        if lean is not None and items is not None and self.state_machine.current_state == "Sta6":
            try:
                lean.receive(items)
            except lean_store.ProtocolError as exc:
                peer = getattr(self.assoc.requestor, "address", "?")
                log.warning("peer %s broke the P-DATA protocol: %s: aborting", peer, exc)
                self.event_queue.put("Evt19")  # AA-8: A-ABORT, as for any invalid PDU
            return
        try:
            pdu, event = self._decode_pdu(bytearray(header) + body)
            self.event_queue.put(event)
        except Exception as exc:
            pynetdicom_log.error("Unable to decode the received PDU data")
            pynetdicom_log.exception(exc)
            self.event_queue.put("Evt19")
            return
        self._recv_pdu.put(pdu)

    def _run_reactor(self) -> None:
        self._idle_timer.start()
        idle = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                idle = True
            if idle:
                self._wait_for_work()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:
                log.error("exception in the DUL reactor, aborting the association")
                log.exception(exc)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                cast(AssociationSocket, self.socket).send(abort_pdu.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            self.state_machine.do_action(event)
            idle = False


class EventDrivenAssociation(Association):
    """An acceptor association whose reactor waits for messages instead of sleeping."""

    def __init__(self, ae: Any, mode: str) -> None:
        super().__init__(ae, mode)
        self._make_event_driven()

    def _make_event_driven(self) -> None:
        """New DUL and DIMSE queues that wake the threads: before either thread starts.

        The new DUL takes over the stock one's socket, its events (``set_socket`` queued
        Evt5, the connection indication, there) and its timers (the ACSE and network
        timeouts were set on them).
        """
        stock = self.dul
        self.nexrel_wake = threading.Event()
        dul = self.dul = EventDrivenDUL(self, self.nexrel_wake.set)
        dul.socket, dul.event_queue = stock.socket, stock.event_queue
        dul.artim_timer, dul._idle_timer = stock.artim_timer, stock._idle_timer
        self.dimse.msg_queue = WakingQueue(self.nexrel_wake.set)
        stock_send = self.dimse.send_msg

        def send_msg(primitive: Any, context_id: int) -> None:
            if not send_pending_find(self, primitive, context_id):
                stock_send(primitive, context_id)

        self.dimse.send_msg = send_msg  # type: ignore[method-assign]

    @classmethod
    def adopt(cls, assoc: Association) -> EventDrivenAssociation:
        """Turn a stock ``Association``, not yet started nor connected, into one of these."""
        assert not assoc.is_alive() and not assoc._started_dul
        assoc.__class__ = cls
        adopted = cast(EventDrivenAssociation, assoc)
        adopted._make_event_driven()
        return adopted

    def kill(self) -> None:
        super().kill()
        self.nexrel_wake.set()

    def _run_reactor(self) -> None:
        """pynetdicom's ``Association._run_reactor`` (acceptor), waiting where it sleeps."""
        self._is_paused = False
        busy = False
        while not self._kill:
            if not busy:  # a message served: there may be another queued, look at once
                self.nexrel_wake.wait(TIMER_CHECK)
            self.nexrel_wake.clear()
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self.dimse.get_msg(block=False)
            busy = msg is not None
            if msg:
                self._serve_request(msg, cast(int, context_id))

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                log.info("Association Released")
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                log.info(
                    "Association Aborted%s",
                    " (A-P-ABORT)" if self.acse.is_aborted("a-p-abort") else "",
                )
                self.dul.receive_pdu(wait=False)
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self.dul.idle_timer_expired():
                log.error("Network timeout reached")
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


def install_pause_guard() -> None:
    """Close pynetdicom's race between its reactor and a ``send_*()`` (every association of
    the process, requestor or acceptor; pynetdicom#875 reports the C-FIND form of it).

    A ``send_*()`` pauses the reactor by clearing ``_reactor_checkpoint``, then waits for
    ``_is_paused``. The reactor sets ``_is_paused`` just before it waits on the checkpoint.
    When that wait returns at once (the checkpoint still set), the sender can read that
    stale ``True``, send its request and read the response. Meanwhile the reactor goes on
    to take a message off the DIMSE queue: a fast peer's response is in it by then. The
    reactor logs "Received unexpected C-STORE service message", and the sender waits out
    the DIMSE timeout for a response that it will never get. Here the reactor's
    non-blocking take (only the reactor calls ``get_msg`` without blocking) gives nothing
    while the checkpoint is cleared. That is exactly the sender's case: its clear came
    before it read ``_is_paused``, so before the reactor's next look at the queue.
    """
    stock = DIMSEServiceProvider.get_msg
    if getattr(stock, "nexrel_pause_guard", False):
        return

    def get_msg(self: DIMSEServiceProvider, block: bool = False) -> Any:
        if not block and not self.assoc._reactor_checkpoint.is_set():
            return None, None  # a send_*() is pausing the reactor: the message is its own
        return stock(self, block)

    get_msg.nexrel_pause_guard = True  # type: ignore[attr-defined]
    DIMSEServiceProvider.get_msg = get_msg  # type: ignore[method-assign]


PENDING = (0xFF00, 0xFF01)


def send_pending_find(assoc: Association, primitive: Any, context_id: int) -> bool:
    """Queue a pending C-FIND response as ready PDUs; ``False`` for anything else.

    pynetdicom turns each response into a message, a Dataset and its encoding (~0.3 ms of
    CPU), then PDU objects in the DUL thread; a query's pending responses differ only by
    their identifier, which ``dicomnet.dimse.encoded`` already keeps as bytes. Left to
    pynetdicom: every final response, and everything when its standard logging is on
    (EVT_DIMSE_SENT is not triggered here; the audit's handler ignores pending ones).
    """
    if (
        not isinstance(primitive, C_FIND)
        or primitive.Status not in PENDING
        or primitive.Identifier is None
        or primitive.MessageIDBeingRespondedTo is None
        or primitive.AffectedSOPClassUID is None
        or _config.LOG_HANDLER_LEVEL != "none"
    ):
        return False
    identifier = primitive.Identifier.getvalue()
    command = commands.find_response(
        message_id=int(primitive.MessageIDBeingRespondedTo),
        sop_class_uid=str(primitive.AffectedSOPClassUID),
        status=int(primitive.Status),
    )
    max_pdu = int(assoc.dimse.maximum_pdu_size or 0)
    prepared = PreparedPDUs(commands.message_pdus(context_id, command, identifier, max_pdu))
    assoc.dul.to_provider_queue.put(prepared)  # type: ignore[arg-type]  # EventDrivenDUL's
    return True


def context_copies(contexts: list[PresentationContext]) -> list[PresentationContext]:
    """Each context copied with a list of its own: what pynetdicom's ``deepcopy`` protects.

    Its UIDs are immutable ``str``s, shared safely; ``deepcopy`` rebuilt and re-validated
    every one (a regex each): with every storage class times every transfer syntax, more
    CPU than the whole C-FIND of 50 studies (docs/benchmarks.md, issue 12, third pass).
    """
    copies = []
    for context in contexts:
        twin = copy.copy(context)
        twin._transfer_syntax = list(context._transfer_syntax)
        copies.append(twin)
    return copies


class RequestHandler(StockRequestHandler):
    """pynetdicom's request handler, creating ``EventDrivenAssociation``s."""

    def _create_association(self) -> Association:
        """pynetdicom 3.0's ``RequestHandler._create_association`` step for step, but for the
        copy of the server's contexts (``context_copies``)."""
        server = cast(Any, self.server)
        ae = self.ae
        assoc = Association(ae, MODE_ACCEPTOR)
        assoc._server = server
        assoc.name = f"AcceptorThread@{datetime.now():%Y%m%d%H%M%S}"
        assoc.set_socket(AssociationSocket(assoc, client_socket=self.request))
        acceptor = assoc.acceptor
        acceptor.maximum_length = ae.maximum_pdu_size
        acceptor.ae_title = server.ae_title
        acceptor.address_info = self.local
        acceptor.implementation_class_uid = ae.implementation_class_uid
        acceptor.implementation_version_name = ae.implementation_version_name
        acceptor.supported_contexts = context_copies(server.contexts)
        assoc.requestor.address_info = self.remote
        for event, handlers in server._handlers.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler in handlers:
                    assoc.bind(event, handler[0], handler[1])
        return EventDrivenAssociation.adopt(assoc)
