"""The leak check against real sockets, threads, processes, files and asyncio tasks."""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
import threading
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path

import pytest

from chaosnet import leaks
from chaosnet.leaks import Leak, LeakCheck, LeakError, Resource
from chaosnet.servers import start_builtin

QUICK = 0.05  # settle budget when a leak is expected: no need to wait long


def test_clean_code_reports_nothing(tmp_path: Path) -> None:
    check = LeakCheck()
    check.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    (tmp_path / "f").write_text("closed again")
    report = check.finish()
    assert not report
    assert report.render() == "no leaks"


def test_a_leaked_socket_is_reported_with_its_address_and_creation_site() -> None:
    check = LeakCheck()
    check.start()
    leaked = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the creation site
    try:
        leaked.bind(("127.0.0.1", 0))
        report = check.finish(settle=QUICK)
        port = leaked.getsockname()[1]
    finally:
        leaked.close()
    [leak] = report.leaks
    assert leak.kind == "socket"
    assert leak.summary == f"socket fd {leaked_fd(leak)}: AF_INET SOCK_STREAM 127.0.0.1:{port}"
    assert "created at tests/checks/test_leaks.py:" in leak.details[0]
    assert "in test_a_leaked_socket_is_reported" in leak.details[0]
    assert "leaked = socket.socket(socket.AF_INET, socket.SOCK_STREAM)" in leak.details[1]
    assert "(in thread 'MainThread')" in leak.details


def leaked_fd(leak: Leak) -> int:
    return int(leak.summary.split()[2].rstrip(":"))


def test_a_connected_socket_shows_both_ends() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        check = LeakCheck()
        check.start()
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        with client, server_side:
            report = check.finish(settle=QUICK)
            here, there = client.getsockname(), listener.getsockname()
    summaries = sorted(leak.summary.split(": ", 1)[1] for leak in report.of_kind("socket"))
    assert summaries == sorted(
        [
            f"AF_INET SOCK_STREAM {here[0]}:{here[1]} -> {there[0]}:{there[1]}",
            f"AF_INET SOCK_STREAM {there[0]}:{there[1]} -> {here[0]}:{here[1]}",
        ]
    )


def test_a_socket_created_in_a_coroutine_points_at_the_coroutine() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        loop = asyncio.new_event_loop()  # its own fds exist before the baseline
        try:
            check = LeakCheck()
            check.start()

            async def open_and_forget() -> asyncio.StreamWriter:
                _, writer = await asyncio.open_connection(*listener.getsockname())
                return writer

            writer = loop.run_until_complete(open_and_forget())
            report = check.finish(settle=QUICK)
            writer.close()
        finally:
            loop.close()
    [leak] = report.of_kind("socket")
    assert "in open_and_forget" in leak.details[0]


def test_a_leaked_datagram_client_is_reported_as_a_udp_socket() -> None:
    from chaosnet.datagram import DatagramClient
    from tests.proxy.datagram_support import protocol_echo, udp_upstream

    with udp_upstream(protocol_echo) as server:
        check = LeakCheck()
        check.start()
        client = DatagramClient(server.address)  # never closed: the leak
        try:
            assert client.request(b"hi") == b"hi"
            report = check.finish(settle=QUICK)
            here = client._sock.getsockname() if client._sock else None
        finally:
            client.close()
    [leak] = report.of_kind("socket")
    assert here is not None
    peer = f"{server.address[0]}:{server.address[1]}"
    assert leak.summary.endswith(f"AF_INET SOCK_DGRAM {here[0]}:{here[1]} -> {peer}")
    assert "created at tests/checks/test_leaks.py:" in leak.details[0]  # the user's line


def test_a_datagram_proxy_releases_its_flow_sockets_when_deleted() -> None:
    from chaosnet.control import ControlClient
    from chaosnet.datagram import DatagramClient
    from chaosnet.proxy.embedded import EmbeddedServer
    from tests.proxy.datagram_support import protocol_echo, udp_upstream

    with udp_upstream(protocol_echo) as server, EmbeddedServer() as control:
        client = ControlClient(control.url)
        check = LeakCheck()
        check.start()
        info = client.create_proxy("flows", "{}:{}".format(*server.address), transport="udp")
        for _ in range(3):  # three clients: three flows, three sockets in the proxy
            with DatagramClient(info.address) as datagrams:
                assert datagrams.request(b"x") == b"x"
        sockets = check.finish(settle=QUICK).of_kind("socket")
        datagram = [leak for leak in sockets if "SOCK_DGRAM" in leak.summary]
        assert len(datagram) == 4  # the listening socket and the three flows
        client.delete_proxy("flows")
        client.close()  # the control connection (TCP) too
        assert not check.finish()


def test_a_leaked_thread_is_reported_with_what_it_runs() -> None:
    release = threading.Event()

    def linger() -> None:
        release.wait(10)

    check = LeakCheck()
    check.start()
    worker = threading.Thread(target=linger, name="lingering-worker", daemon=True)
    worker.start()
    try:
        report = check.finish(settle=QUICK)
    finally:
        release.set()
        worker.join(5)
    [leak] = report.leaks
    assert leak.summary == f"daemon thread 'lingering-worker' (ident {worker.ident})"
    assert (
        "runs test_a_leaked_thread_is_reported_with_what_it_runs.<locals>.linger"
        in (leak.details[0])
    )


def test_a_thread_that_ends_while_we_settle_is_not_a_leak() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(10,))
    check = LeakCheck()
    check.start()
    worker.start()
    threading.Timer(0.05, release.set).start()  # finishes during the bounded settle
    report = check.finish(settle=5.0)
    assert not report
    assert report.waited < 4.0


def test_a_leaked_child_process_is_reported_with_where_it_was_started() -> None:
    check = LeakCheck()
    check.start()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        report = check.finish(settle=QUICK)
    finally:
        child.kill()
        child.wait(5)
    [leak] = report.leaks
    assert leak.summary.startswith(f"child process {child.pid}: ")
    assert "import time; time.sleep(30)" in leak.summary
    assert "started at tests/checks/test_leaks.py:" in leak.details[0]


def test_a_leaked_file_is_reported_with_its_path(tmp_path: Path) -> None:
    check = LeakCheck()
    check.start()
    handle = (tmp_path / "notes.txt").open("w")
    fd = handle.fileno()
    try:
        report = check.finish(settle=QUICK)
    finally:
        handle.close()
    [leak] = report.leaks
    assert leak.kind == "fd"
    assert leak.summary == f"file descriptor {fd}: {tmp_path / 'notes.txt'}"


def test_a_pending_task_of_a_watched_loop_is_reported() -> None:
    loop = asyncio.new_event_loop()
    try:
        check = LeakCheck(loop=loop)
        check.start()

        async def forever() -> None:
            await asyncio.Event().wait()

        async def start_and_forget() -> asyncio.Task[None]:
            task = asyncio.create_task(forever(), name="forgotten")
            await asyncio.sleep(0)
            return task

        task = loop.run_until_complete(start_and_forget())
        report = check.finish(settle=QUICK)
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    finally:
        loop.close()
    [leak] = report.leaks
    assert leak.summary.startswith("asyncio task 'forgotten' running ")
    assert "forever" in leak.summary
    assert "in forever" in leak.details[0]


def test_a_socket_closed_only_by_the_garbage_collector_is_a_leak() -> None:
    check = LeakCheck()
    check.start()
    sock = socket.socket()  # dropped in a cycle: closed only by the collector
    cycle: list[object] = [sock]
    cycle.append(cycle)
    gc.disable()
    try:
        del sock, cycle
        report = check.finish(settle=QUICK)
    finally:
        gc.enable()
    [leak] = report.leaks
    assert leak.kind == "socket"
    assert leak.summary.startswith(
        "a socket was never closed; the garbage collector finalized it "
        "(when the leak check collected garbage): unclosed <socket.socket fd="
    )
    assert "sock = socket.socket()  # dropped in a cycle" in leak.details[1]


def _drops_a_socket_on_error(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))  # never closed on the error path
    sock.sendall(b"x")
    raise ConnectionResetError("the error path forgets the socket")


def test_a_socket_dropped_on_an_error_path_is_reported_with_its_creating_line() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        check = LeakCheck()
        check.start()
        with pytest.raises(ConnectionResetError):
            _drops_a_socket_on_error(listener.getsockname()[1])
        listener.accept()[0].close()
        report = check.finish(settle=QUICK)
    [leak] = report.leaks
    assert leak.summary.startswith("a socket was never closed; the garbage collector finalized")
    assert "raddr=('127.0.0.1'" in leak.summary
    assert "in _drops_a_socket_on_error" in leak.details[0]
    assert "# never closed on the error path" in leak.details[1]


def test_files_and_pipes_finalized_unclosed_are_leaks(tmp_path: Path) -> None:
    check = LeakCheck()
    check.start()
    open(tmp_path / "f", "w").write("x")  # noqa: SIM115 - the file object is dropped
    child = subprocess.Popen([sys.executable, "-c", "print(1)"], stdout=subprocess.PIPE)
    child.wait()
    del child  # its stdout pipe is never closed
    report = check.finish(settle=QUICK)
    summaries = "\n".join(leak.summary for leak in report.leaks)
    assert len(report.leaks) == 2, report.render()
    assert "unclosed file <_io.BufferedReader name=" in summaries
    assert f"unclosed file <_io.TextIOWrapper name='{tmp_path / 'f'}'" in summaries
    sites = "\n".join(line for leak in report.leaks for line in leak.details)
    assert 'open(tmp_path / "f", "w").write("x")' in sites
    assert "child = subprocess.Popen(" in sites


def test_finalized_resources_are_leaks_whatever_the_warning_filters_say() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # -W error::ResourceWarning
        check = LeakCheck()
        check.start()
        socket.socket()  # dropped at once
        report = check.finish(settle=QUICK)
    assert [leak.kind for leak in report.leaks] == ["socket"]


def test_outside_a_check_resource_warnings_follow_the_filters() -> None:
    check = LeakCheck()
    check.start()
    check.finish(settle=0)  # a check that ran and ended stops listening
    with pytest.warns(ResourceWarning, match="unclosed <socket"):
        socket.socket()


def test_long_lived_things_are_exempt() -> None:
    check = LeakCheck()
    check.start()
    server = start_builtin("echo")  # e.g. a session-scope fixture first used by this test
    release = threading.Event()
    proxy_thread = threading.Thread(target=release.wait, args=(10,), name="embedded-proxy")
    proxy_thread.start()
    leaks.long_lived.add(server)
    check.ignore(proxy_thread)
    try:
        assert not check.finish(settle=QUICK)
    finally:
        leaks.long_lived.discard(server)
        release.set()
        proxy_thread.join(5)
        server.stop()


def test_the_context_manager_raises_a_readable_leak_error() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(10,), name="w")
    held: list[socket.socket] = []

    def leave_a_socket_and_a_thread() -> None:
        with LeakCheck(settle=QUICK):
            held.append(socket.socket())
            worker.start()

    with pytest.raises(LeakError) as failure:
        leave_a_socket_and_a_thread()
    release.set()
    worker.join(5)
    held[0].close()
    text = str(failure.value)
    assert text.startswith("2 resources leaked (still there after waiting 0.")
    assert "\n- socket fd " in text
    assert "\n    created at tests/checks/test_leaks.py:" in text
    assert "\n- thread 'w' (ident " in text
    assert isinstance(failure.value, AssertionError)


class FakeContainers:
    """A probe like the Docker helper's: resources that live outside this process."""

    def __init__(self) -> None:
        self.running: set[str] = set()

    def snapshot(self) -> Mapping[Hashable, Resource]:
        return {name: Resource("container", name) for name in self.running}

    def describe(self, resource: Resource) -> Leak:
        return Leak("container", f"container {resource.key} (label chaosnet)")


@pytest.fixture
def containers() -> Iterator[FakeContainers]:
    probe = FakeContainers()
    unregister = leaks.register_probe(lambda: probe)
    yield probe
    unregister()


def test_a_registered_probe_takes_part(containers: FakeContainers) -> None:
    check = LeakCheck()
    check.start()
    containers.running.add("kv-1")
    report = check.finish(settle=QUICK)
    assert [leak.summary for leak in report.leaks] == ["container kv-1 (label chaosnet)"]
