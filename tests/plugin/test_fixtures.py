"""The fixtures, the checks and the failure report, through real inner pytest runs."""

from __future__ import annotations

import os
import signal

import pytest

from tests import toolchain


def test_design_example_reads_and_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from chaosnet.connection import FramedClient
        from chaosnet.retry import RetryPolicy

        def test_survives_a_reset_on_the_first_connection(chaos, framed_echo_server):
            proxy = chaos.proxy(upstream=framed_echo_server.address)
            policy = RetryPolicy(attempts=5, deadline=3.0)
            with proxy.toxic("reset_peer", timeout=0, max_connections=1):
                with FramedClient(proxy.address, retry=policy) as client:
                    assert client.request(b"ping") == b"ping"
            log = proxy.wait_connections(open=0)
            assert log.opened == 2
            assert log.records[-2].close_kind == "rst"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_builtin_servers_are_real_processes_on_real_sockets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, socket
        from chaosnet.connection import FramedClient
        from chaosnet.kv import KVClient

        def test_all(echo_server, framed_echo_server, kv_server):
            servers = (echo_server, framed_echo_server, kv_server)
            assert len({s.pid for s in servers} | {os.getpid()}) == 4
            with socket.create_connection(echo_server.address) as sock:
                sock.sendall(b"hi")
                assert sock.recv(2) == b"hi"
            with FramedClient(framed_echo_server.address) as client:
                assert client.request(b"x" * 1000) == b"x" * 1000
            with KVClient(kv_server.address) as kv:
                result = kv.put("k", "v", request_id="r1")
                assert kv.get("k") == "v"
                assert [w.request_id for w in kv.writes()][-1] == "r1"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_failure_report_shows_seed_server_log_and_connections(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys, socket
        from chaosnet.servers.readiness import LogLine

        SERVER = (
            "import socket, sys\\n"
            "s = socket.create_server(('127.0.0.1', 0))\\n"
            "print('line-from-the-server port', s.getsockname()[1], flush=True)\\n"
            "c, _ = s.accept()\\n"
            "print('served one client', flush=True)\\n"
            "c.recv(10)\\n"
            "s.accept()\\n"
        )

        def test_fails(chaos, server_process):
            server = server_process(
                [sys.executable, "-c", SERVER],
                ready=LogLine(r"line-from-the-server port (?P<port>\\d+)"),
            )
            proxy = chaos.proxy(server)
            with socket.create_connection(proxy.address) as sock:
                sock.sendall(b"hello")
                proxy.wait_connections(open=1)
            assert False, "the client gave up"
        """
    )
    result = pytester.runpytest("--chaosnet-seed=99")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chaosnet (call)*",
            "backend: embedded (http://127.0.0.1:*)",
            "seed: * (session seed 99); replay with --chaosnet-seed 99*",
            "*chaosnet connections*",
            "*proxy1: 127.0.0.1:* -> 127.0.0.1:*",
            "*opened 1*",
            "*chaosnet server log: python*",
            "*line-from-the-server port*",
        ]
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "threading.Thread(target=threading.Event().wait, name='forgotten', daemon=True)"
            ".start()",
            "*thread 'forgotten'*",
        ),
        (
            "pathlib.Path('pid').write_text(str(subprocess.Popen(SLEEPER).pid))",
            "*child process*",
        ),
    ],
    ids=["thread", "child-process"],
)
def test_leaks_other_than_sockets_fail_the_test(
    pytester: pytest.Pytester, body: str, expected: str
) -> None:
    pytester.makepyfile(
        f"""
        import pathlib, subprocess, sys, threading
        SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)"]

        def test_leaks(chaos):
            {body}
        """
    )
    try:
        result = pytester.runpytest()
    finally:
        pid_file = pytester.path / "pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 resource leaked*", expected])


def test_async_test_with_async_client_and_a_leaked_task(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from chaosnet.connection import AsyncFramedClient
        from chaosnet.retry import RetryPolicy

        @pytest.mark.asyncio
        async def test_async_client_through_a_proxy(chaos, framed_echo_server):
            proxy = chaos.proxy(framed_echo_server)
            with proxy.toxic("reset_peer", timeout=0, max_connections=1):
                client = AsyncFramedClient(proxy.address, retry=RetryPolicy(attempts=3))
                try:
                    assert await client.request(b"async") == b"async"
                finally:
                    await client.close()

        @pytest.mark.asyncio
        async def test_leaks_a_task(chaos):
            asyncio.get_running_loop().create_task(asyncio.sleep(30), name="orphan")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_leaks_a_task*", "*task 'orphan'*"])


def test_server_that_dies_during_a_test_fails_it_with_its_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        from chaosnet.servers.readiness import LogLine

        SERVER = (
            "import socket, sys\\n"
            "s = socket.create_server(('127.0.0.1', 0))\\n"
            "print('port', s.getsockname()[1], flush=True)\\n"
            "s.accept()\\n"
            "print('fatal: out of cheese', flush=True)\\n"
            "sys.exit(3)\\n"
        )

        def test_crash(server_process):
            import socket
            ready = LogLine(r"port (?P<port>\\d+)")
            server = server_process([sys.executable, "-c", SERVER], ready=ready)
            socket.create_connection(server.address).close()
            assert server.wait(5) == 3
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*died unexpectedly*", "*out of cheese*"])


def test_xdist_workers_get_their_own_embedded_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pathlib, pytest
        from chaosnet.connection import FramedClient

        @pytest.mark.parametrize("n", range(6))
        def test_through_a_proxy(chaos, chaos_server, framed_echo_server, n):
            proxy = chaos.proxy(framed_echo_server, name="same-name")
            with FramedClient(proxy.address) as client:
                assert client.request(b"%d" % n) == b"%d" % n
            worker = os.environ["PYTEST_XDIST_WORKER"]
            pathlib.Path(f"{worker}-{n}.url").write_text(chaos_server.url)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--chaosnet-seed=5")
    result.assert_outcomes(passed=6)
    urls: dict[str, set[str]] = {}
    for path in pytester.path.glob("gw*.url"):
        urls.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert len(urls) == 2
    assert all(len(found) == 1 for found in urls.values())
    assert urls["gw0"] != urls["gw1"]


def test_pytest_timeout_kill_leaves_no_process_behind(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pathlib, sys, threading

        def test_hangs(chaos, framed_echo_server, server_process):
            argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"]
            server = server_process(argv, ready=[])
            pids = [framed_echo_server.pid, server.pid]
            pathlib.Path("pids").write_text(" ".join(map(str, pids)))
            threading.Event().wait()
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "timeout", "--timeout=2", "--timeout-method=thread"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*Timeout*"])
    pids = [int(pid) for pid in (pytester.path / "pids").read_text().split()]
    _gone, alive = psutil_wait(pids)
    assert not alive, f"orphans survived the killed run: {alive}"


def psutil_wait(pids: list[int]) -> tuple[list[int], list[int]]:
    import psutil

    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    gone, alive = psutil.wait_procs(processes, timeout=10)
    return [p.pid for p in gone], [p.pid for p in alive]


def test_toxiproxy_backend_runs_the_real_binary_and_refuses_extensions(
    pytester: pytest.Pytester, toxiproxy_bins: tuple[object, object]
) -> None:
    server_bin = toxiproxy_bins[0]
    pytester.makepyfile(
        """
        import pytest
        from chaosnet.connection import FramedClient
        from chaosnet.control import UnsupportedByBackend

        def test_latency_through_toxiproxy(chaos, chaos_backend, chaos_server, framed_echo_server):
            assert chaos_backend.name == "toxiproxy"
            assert chaos_server is chaos_backend  # the old name, an alias for one release
            assert "version" in chaos.client.version()
            assert not chaos.client.is_chaosnet
            proxy = chaos.proxy(framed_echo_server)
            with proxy.toxic("latency", latency=20):
                with FramedClient(proxy.address) as client:
                    assert client.request(b"slow") == b"slow"

        def test_extension_is_refused_by_name(chaos, framed_echo_server):
            proxy = chaos.proxy(framed_echo_server)
            expected = "not supported by backend toxiproxy: truncate_frame"
            with pytest.raises(UnsupportedByBackend, match=expected):
                proxy.toxic("truncate_frame", at="body")

        def test_protocols_and_message_toxics_are_refused_by_name(chaos, framed_echo_server):
            refused = "not supported by backend toxiproxy: "
            with pytest.raises(UnsupportedByBackend, match=refused + "protocol"):
                chaos.proxy(framed_echo_server, protocol="length_prefix")
            proxy = chaos.proxy(framed_echo_server)
            for toxic in ("truncate_message", "stall_message", "inject_reply"):
                with pytest.raises(UnsupportedByBackend, match=refused + toxic):
                    proxy.toxic(toxic)
            with pytest.raises(UnsupportedByBackend, match=refused + "skip_messages"):
                proxy.toxic("latency", latency=1, skip_messages=1)
        """
    )
    result = pytester.runpytest(
        "--chaosnet-backend=toxiproxy", f"--chaosnet-toxiproxy-bin={server_bin}"
    )
    result.stdout.fnmatch_lines(["chaosnet: backend=toxiproxy *"])
    result.assert_outcomes(passed=3)


def test_missing_toxiproxy_binary_fails_tests_with_a_clear_message(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_needs_a_proxy(chaos): pass")
    result = pytester.runpytest(
        "--chaosnet-backend=toxiproxy", "--chaosnet-toxiproxy-bin=/nonexistent/toxiproxy-server"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*chaosnet backend 'toxiproxy': toxiproxy binary not found: "
            "/nonexistent/toxiproxy-server*"
        ]
    )


def test_url_backend_prefixes_proxy_names_per_worker(pytester: pytest.Pytester) -> None:
    from chaosnet.control import ControlClient
    from chaosnet.proxy.embedded import EmbeddedServer

    with EmbeddedServer() as server:
        pytester.makepyfile(
            """
            import os

            def test_named(chaos, echo_server):
                proxy = chaos.proxy(echo_server, name="db")
                assert proxy.name == os.environ["PYTEST_XDIST_WORKER"] + "-db"
                assert proxy.name in chaos.client.proxies()
            """
        )
        result = pytester.runpytest_subprocess("-n", "1", f"--chaosnet-backend={server.url}")
        result.assert_outcomes(passed=1)
        assert ControlClient(server.url).proxies() == {}


def test_requires_all_tools_in_ci_mode() -> None:
    """Guard: CI must not silently skip backends (see tests/toolchain.py)."""
    assert toolchain.require_all() in (True, False)


def test_an_error_inside_the_proxy_fails_the_test_that_caused_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import socket
        import pytest
        from chaosnet.proxy.toxics import REGISTRY
        from chaosnet.proxy.toxics.base import Toxic

        class ExplodingToxic(Toxic):
            type_name = "explode"
            __slots__ = ()

            def on_data(self, data):
                raise RuntimeError("the toxic exploded")

        REGISTRY["explode"] = ExplodingToxic

        def teardown_module():
            del REGISTRY["explode"]

        def test_causes_it(chaos, echo_server):
            proxy = chaos.proxy(echo_server)
            proxy.toxic("explode", stream="upstream")
            with socket.create_connection(proxy.address, timeout=5) as sock:
                sock.sendall(b"boom")
                with pytest.raises(ConnectionResetError):  # only this connection is cut
                    sock.recv(10)

        def test_next_test_is_not_blamed(chaos, echo_server):
            proxy = chaos.proxy(echo_server)
            with socket.create_connection(proxy.address, timeout=5) as sock:
                sock.sendall(b"fine")
                assert sock.recv(10) == b"fine"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_causes_it*",
            "*error inside the embedded proxy server during this test: "
            "RuntimeError: the toxic exploded*",
        ]
    )


def test_a_timed_out_test_still_tears_down_its_proxies(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading

        import pytest

        @pytest.mark.timeout(60)  # the session's backend and server start outside the 1 s
        def test_warm_up(chaos, echo_server):
            pass

        def test_hangs(chaos, echo_server):
            chaos.proxy(echo_server, name="left-behind?")
            threading.Event().wait()

        def test_next(chaos):
            assert chaos.client.proxies() == {}
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "timeout", "--timeout=1", "--timeout-method=signal"
    )
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_a_fixture_of_the_same_name_in_a_conftest_is_not_ours(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def echo_server():
            return "the project's own"
        """
    )
    pytester.makepyfile(
        """
        import socket
        KEEP = []

        def test_uses_its_own_echo_server(echo_server):
            assert echo_server == "the project's own"
            KEEP.append(socket.socket())  # no chaosnet fixture: no leak check
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_failure_report_shows_the_last_messages_of_each_connection(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_fails(chaos, http_server):
            proxy = chaos.proxy(http_server, protocol="http1")
            proxy.toxic("inject_reply", stream="upstream", status=503, max_messages=1)
            host, port = proxy.address
            with httpx.Client(base_url=f"http://{host}:{port}") as client:
                for path in ("/", "/echo", "/bytes/3", "/status/204", "/count", "/", "/", "/"):
                    client.get(path)
            assert False, "the client gave up"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chaosnet connections*",
            "*#1 from 127.0.0.1:*",
            # 7 down: the server sent 7 replies; the 8th, the first, was the proxy's
            "    messages: 8 up, 7 down; last 6:",
            "      #1 -> 5 GET / [*",
            "      #1 <- 5 200 [*",
            "      #1 -> 6 GET / [*",
            "      #1 <- 6 200 [*",
            "      #1 -> 7 GET / [*",
            "      #1 <- 7 200 [*",
        ]
    )
    assert "injected" not in result.stdout.str()  # the first messages are not among the last 6
