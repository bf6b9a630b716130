"""The plugin's defaults catch what they can with no assertion of the user's: a socket the
garbage collector had to close, a hang (with its stack), a client hammering a proxy."""

from __future__ import annotations

import pytest


def test_a_socket_dropped_on_an_error_path_fails_the_test_with_no_assertion(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_client(chaos, framed_echo_server):
            proxy = chaos.proxy(framed_echo_server.address)
            with proxy.toxic("reset_on_accept"):
                sock = socket.socket()  # the leak
                try:
                    # Made before the connect: the reset may fail the connect itself.
                    sock.settimeout(2)
                    sock.connect(proxy.address)
                    sock.sendall(b"\\0\\0\\0\\1x")
                    sock.recv(10)
                except OSError:
                    pass  # the error path drops the socket: only the collector closes it
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_client*",
            "*a socket was never closed; the garbage collector finalized it*",
            "*created at test_a_socket_dropped_on_an_error_path_fails_*.py:6 in test_client",
            "*sock = socket.socket()  # the leak",
        ]
    )


def test_a_hanging_test_is_failed_with_its_stack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_hangs(chaos, framed_echo_server):
            proxy = chaos.proxy(framed_echo_server.address)
            proxy.toxic("timeout", timeout=0)  # replies black-holed
            with socket.create_connection(proxy.address) as sock:  # and no timeout
                sock.sendall(b"\\0\\0\\0\\1x")
                sock.recv(10)  # stuck here until the watchdog cuts the proxy
        """
    )
    result = pytester.runpytest("--chaosnet-hang-timeout=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the test was still running after 1s (--chaosnet-hang-timeout); its thread "
            "'MainThread' was stuck at test_a_hanging_test_is_failed_with_its_stack.py:8 "
            "in test_hangs*",
            "*sock.recv(10)  # stuck here*",
        ]
    )
    assert result.duration < 30  # not the time an OS takes to give up on a black hole


def test_a_test_that_ends_in_time_is_not_watched_further(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading

        def test_quick(chaos):
            names = [t.name for t in threading.enumerate()]
            assert "chaosnet-hang-watch" in names
        """
    )
    pytester.runpytest("--chaosnet-hang-timeout=30").assert_outcomes(passed=1)
    pytester.runpytest("--chaosnet-hang-timeout=0").assert_outcomes(failed=1)


def test_hammering_a_proxy_is_a_warning_in_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_tight_loop(chaos, framed_echo_server):
            proxy = chaos.proxy(framed_echo_server.address)
            with proxy.toxic("reset_on_accept", max_connections=60):
                for _ in range(61):  # no backoff at all
                    try:
                        with socket.create_connection(proxy.address, timeout=2) as sock:
                            sock.sendall(b"\\0\\0\\0\\1x")
                            if sock.recv(10):
                                break
                    except OSError:
                        continue
        """
    )
    result = pytester.runpytest("--chaosnet-hammer-rate=40")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*HammeringWarning: proxy *: * connections opened within one second (more than "
            "--chaosnet-hammer-rate 40/s): a retry loop without backoff hammers the server",
        ]
    )
    quiet = pytester.runpytest("--chaosnet-hammer-rate=0")
    quiet.assert_outcomes(passed=1)
    assert "HammeringWarning" not in quiet.stdout.str()
