"""Accepted associations wait for events (``dicomnet.net.reactor``): a real pynetdicom
server and a real pynetdicom SCU on loopback, no database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from dicomnet.net import reactor


def start(*, event_driven: bool, acse_timeout: float = 5) -> ThreadedAssociationServer:
    """A server on a free port, started as ``listener.serve`` starts its own."""
    ae = AE(ae_title="NEXREL-TEST")
    ae.add_supported_context(Verification)
    ae.acse_timeout = ae.network_timeout = acse_timeout
    srv = ae.make_server(
        ("127.0.0.1", 0),
        server_class=ThreadedAssociationServer,
        evt_handlers=[],
        request_handler=reactor.RequestHandler if event_driven else None,
    )
    ae._servers.append(srv)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(params=["event-driven", "stock"])
def server(request) -> Iterator[tuple[ThreadedAssociationServer, str]]:
    srv = start(event_driven=request.param == "event-driven")
    yield srv, request.param
    srv.shutdown()
    srv.server_close()


def associate(srv: ThreadedAssociationServer) -> Association:
    """An established Verification association with ``srv``, as a stock SCU makes it."""
    scu = AE(ae_title="SCU")
    scu.add_requested_context(Verification)
    assoc = scu.associate("127.0.0.1", srv.server_address[1], ae_title="NEXREL-TEST")
    assert assoc.is_established
    return assoc


def acceptor(srv: ThreadedAssociationServer) -> Association:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [a for a in srv.active_associations if a.is_established]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError("no established association on the server")


def context_switches(native_id: int) -> int:
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def wake_ups_while_idle(assoc: Association, seconds: float) -> int:
    """Voluntary context switches of the association's two threads over ``seconds``."""
    ids = [assoc.native_id, assoc.dul.native_id]
    assert all(ids)
    before = sum(context_switches(i) for i in ids if i is not None)
    time.sleep(seconds)
    return sum(context_switches(i) for i in ids if i is not None) - before


def test_an_idle_association_does_not_poll(server):
    """pynetdicom's threads sleep 1 ms and look again; these wait on the socket and queues.
    Both kinds measured here, so the figure shows what the stock reactor does."""
    srv, kind = server
    assoc = associate(srv)
    try:
        accepted = acceptor(srv)
        assert isinstance(accepted, reactor.EventDrivenAssociation) == (kind == "event-driven")
        wake_ups = wake_ups_while_idle(accepted, 1.0)
        if kind == "event-driven":
            # TIMER_CHECK (50 ms) for each of two threads: ~40 a second.
            assert wake_ups < 100
        else:
            assert wake_ups > 300  # a wake-up every ms or so, per thread
    finally:
        assoc.release()


def test_messages_and_release_are_answered_promptly(server):
    """C-ECHOs answered, then the release, with no wait for a timer."""
    srv, _ = server
    assoc = associate(srv)
    for _ in range(20):
        assert assoc.send_c_echo().Status == 0x0000
    accepted = acceptor(srv)
    started = time.monotonic()
    assoc.release()
    assert assoc.is_released
    accepted.join(timeout=5)
    assert not accepted.is_alive() and not accepted.dul.is_alive()
    assert time.monotonic() - started < 1.0


def test_the_acse_timeout_still_closes_a_silent_connection():
    """The timers set on the stock DUL (ACSE, network) are the new one's."""
    srv = start(event_driven=True, acse_timeout=1)
    try:
        with socket.create_connection(srv.server_address, timeout=5) as silent:
            started = time.monotonic()
            assert silent.recv(1) == b""  # closed by the listener, nothing sent
            assert 0.9 <= time.monotonic() - started < 3
    finally:
        srv.shutdown()
        srv.server_close()


def test_accepted_associations_get_their_own_copies_of_the_servers_contexts(server):
    """What pynetdicom's deepcopy gave (equal contexts, none shared with the server, nor
    their lists), from ``context_copies``, which does not rebuild every UID."""
    srv, _ = server
    assoc = associate(srv)
    try:
        accepted = acceptor(srv)
        theirs = accepted.acceptor.supported_contexts
        ours = srv.contexts
        assert [(c.abstract_syntax, c.transfer_syntax, c.scu_role, c.scp_role) for c in theirs] == [
            (c.abstract_syntax, c.transfer_syntax, c.scu_role, c.scp_role) for c in ours
        ]
        assert not {id(c) for c in theirs} & {id(c) for c in ours}
        assert not {id(c._transfer_syntax) for c in theirs} & {id(c._transfer_syntax) for c in ours}
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_context_copies_leave_the_originals_alone():
    ae = AE()
    ae.add_supported_context(Verification, scu_role=True, scp_role=False)
    (original,) = ae.supported_contexts
    (twin,) = reactor.context_copies([original])
    twin.add_transfer_syntax("1.2.840.10008.1.2.4.50")
    twin.context_id = 3
    assert "1.2.840.10008.1.2.4.50" not in original.transfer_syntax
    assert original.context_id is None
    assert (twin.scu_role, twin.scp_role) == (True, False)


def test_a_paused_reactor_leaves_the_senders_response_alone():
    """pynetdicom's reactor may look at the DIMSE queue after a send_*() has cleared its
    checkpoint (install_pause_guard): the response waiting there is the sender's."""
    reactor.install_pause_guard()  # as DicomnetConfig.ready() does; idempotent
    assoc = Association(AE(), "requestor")
    response = object()
    assoc.dimse.msg_queue.put((1, response))

    assoc._reactor_checkpoint.clear()  # a send_*() pausing the reactor
    assert assoc.dimse.get_msg(block=False) == (None, None)  # the reactor's look: nothing
    assert assoc.dimse.get_msg(block=True) == (1, response)  # the sender's: its response

    assoc._reactor_checkpoint.set()  # resumed: the reactor serves the queue again
    assoc.dimse.msg_queue.put((1, response))
    assert assoc.dimse.get_msg(block=False) == (1, response)
