"""Datagram proxies from the plugin: fixtures, toxics, the leak check, a real Toxiproxy."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_a_datagram_client_survives_loss_through_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from chaosnet.datagram import DatagramClient
        from chaosnet.retry import RetryPolicy

        def test_loss(chaos, udp_echo_server):
            proxy = chaos.proxy(udp_echo_server, transport="udp", flow_timeout=5000)
            assert proxy.transport == "udp"
            policy = RetryPolicy(attempts=20, deadline=10.0, initial=0.0)
            with proxy.toxic("loss", stream="upstream", probability=0.3):
                with DatagramClient(proxy.address, retry=policy, timeout=0.05) as client:
                    for i in range(20):
                        assert client.request(b"%d" % i) == b"%d" % i
            [flow] = proxy.connections.records
            assert flow.toxic_counts["loss_upstream"]["dropped"] > 0
            assert flow.datagrams_downstream == client.ledger.answered + client.ledger.duplicates

        KEPT = []

        def test_leaked_datagram_socket(chaos, udp_echo_server):
            client = DatagramClient(udp_echo_server.address)
            KEPT.append(client)  # still referenced, never closed: a real leak
            assert client.request(b"x") == b"x"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)  # the leak fails the second at teardown
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaked_datagram_socket*",
            "1 resource leaked*",
            "- socket fd *: AF_INET SOCK_DGRAM 127.0.0.1:* -> 127.0.0.1:*",
            "    created at *.py:* in test_leaked_datagram_socket",
        ]
    )


def test_a_real_toxiproxy_refuses_a_datagram_proxy_by_name(
    pytester: pytest.Pytester, toxiproxy_bins: tuple[Path, Path]
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from chaosnet.control import UnsupportedByBackend

        def test_refused(chaos, udp_echo_server):
            with pytest.raises(UnsupportedByBackend) as refused:
                chaos.proxy(udp_echo_server, transport="udp")
            assert str(refused.value) == (
                "not supported by backend toxiproxy: transport 'udp' "
                "(datagram proxies are a chaosnet extension)"
            )
            assert chaos.proxies == []
        """
    )
    result = pytester.runpytest(
        "--chaosnet-backend=toxiproxy", f"--chaosnet-toxiproxy-bin={toxiproxy_bins[0]}"
    )
    result.assert_outcomes(passed=1)
