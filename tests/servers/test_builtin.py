"""The builtin servers, each a real process on a real socket."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosnet.connection import FramedClient
from chaosnet.framing import encode_frame, recv_frame, send_frame
from chaosnet.kv import AsyncKVClient, KVClient, KVProtocolError
from chaosnet.servers import ServerProcess, builtin_server, start_builtin
from tests.support import wait_gone


@pytest.fixture(scope="module")
def echo() -> Iterator[ServerProcess]:
    with start_builtin("echo") as server:
        yield server


@pytest.fixture(scope="module")
def framed_echo() -> Iterator[ServerProcess]:
    with start_builtin("framed_echo", max_frame_size=1024) as server:
        yield server


@pytest.fixture
def kv() -> Iterator[ServerProcess]:
    with start_builtin("kv") as server:
        yield server


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the peer closes (a reset counts as a close)."""
    try:
        return b"".join(iter(lambda: sock.recv(65536), b""))
    except ConnectionResetError:
        return b""


def test_echo_answers_and_finishes_after_a_half_close(echo: ServerProcess) -> None:
    with socket.create_connection(echo.address, timeout=5) as client:
        client.sendall(b"hello, " * 1000)
        client.shutdown(socket.SHUT_WR)
        received = read_to_end(client)
    assert received == b"hello, " * 1000


def test_framed_echo_answers_pipelined_frames_in_order(framed_echo: ServerProcess) -> None:
    with socket.create_connection(framed_echo.address, timeout=5) as client:
        client.sendall(b"".join(encode_frame(b"n%d" % i) for i in range(50)))
        assert [recv_frame(client) for _ in range(50)] == [b"n%d" % i for i in range(50)]
    with FramedClient(framed_echo.address) as framed:
        assert framed.request(b"") == b""


def test_a_bad_client_costs_one_log_line_and_its_connection(framed_echo: ServerProcess) -> None:
    with socket.create_connection(framed_echo.address, timeout=5) as client:
        client.sendall(struct.pack(">I", 4096))  # over the server's 1024-byte limit
        assert read_to_end(client) == b""  # dropped
    with socket.create_connection(framed_echo.address, timeout=5) as client:
        client.sendall(struct.pack(">I", 10) + b"abc")  # cut inside the body
    with FramedClient(framed_echo.address) as framed:
        assert framed.request(b"still here") == b"still here"
        framed.request(b"sync")  # the server handled the truncated stream before this one
    log = framed_echo.log_text()
    assert "bad frame: FrameTooLarge: frame of 4096 bytes exceeds the limit of 1024" in log
    assert "truncated frame: stream ended inside a frame body: got 3 of 10 bytes" in log
    framed_echo.check_alive()


def test_framed_echo_serves_many_concurrent_connections(framed_echo: ServerProcess) -> None:
    async def client(index: int) -> bytes:
        reader, writer = await asyncio.open_connection(*framed_echo.address)
        try:
            for _ in range(5):
                writer.write(encode_frame(b"c%d" % index))
                await reader.readexactly(4 + len(b"c%d" % index))
            return b"ok"
        finally:
            writer.close()
            await writer.wait_closed()

    async def main() -> list[bytes]:
        return await asyncio.gather(*(client(i) for i in range(300)))

    assert asyncio.run(asyncio.wait_for(main(), 20)) == [b"ok"] * 300


def test_kv_records_every_write_with_duplicates(kv: ServerProcess) -> None:
    with KVClient(kv.address) as client:
        assert client.put("a", "1", "r1").applied
        assert client.put("a", "2", "r1").applied  # no dedupe: applied again
        generated = client.put("b", "3").request_id
        assert client.get("a") == "2"
        assert client.get("missing") is None
        log = [(w.key, w.value, w.request_id, w.applied) for w in client.writes()]
    assert log == [("a", "1", "r1", True), ("a", "2", "r1", True), ("b", "3", generated, True)]


def test_kv_dedupe_acknowledges_a_repeat_without_applying_it() -> None:
    with start_builtin("kv", dedupe=True) as server, KVClient(server.address) as client:
        assert client.put("a", "1", "r1").applied
        assert not client.put("a", "2", "r1").applied
        assert client.get("a") == "1"
        assert [w.applied for w in client.writes()] == [True, False]


def test_kv_write_log_pages_and_clear(kv: ServerProcess) -> None:
    with KVClient(kv.address) as client:
        for i in range(25):
            client.put("k", str(i), f"r{i}")
        writes = client.writes(page_size=10)  # three pages
        assert [w.seq for w in writes] == list(range(1, 26))
        client.clear()
        assert client.writes() == []
        assert client.get("k") is None
        client.put("k", "after", "r-after")
        assert [(w.seq, w.request_id) for w in client.writes()] == [(26, "r-after")]


def test_the_asyncio_kv_client_puts_reads_pages_and_clears(
    kv: ServerProcess, framed_echo: ServerProcess
) -> None:
    async def main() -> None:
        async with AsyncKVClient(kv.address) as client:
            for i in range(25):
                assert (await client.put("k", str(i), f"r{i}")).applied
            assert (await client.put("n", "x")).request_id  # a fresh id
            assert await client.get("k") == "24"
            assert await client.get("missing") is None
            writes = await client.writes(page_size=10)  # three pages
            assert [w.seq for w in writes] == list(range(1, 27))
            await client.clear()
            assert await client.writes() == []
        assert client.framed.closed
        with pytest.raises(KVProtocolError, match="kind"):
            async with AsyncKVClient(framed_echo.address) as wrong:
                await wrong.get("k")  # the echo comes back as a request, not a response

    asyncio.run(asyncio.wait_for(main(), 20))


def test_kv_rejects_a_malformed_request_and_keeps_the_connection(kv: ServerProcess) -> None:
    with socket.create_connection(kv.address, timeout=5) as raw:
        send_frame(raw, b"{not json")
        assert b'"kind":"error"' in (recv_frame(raw) or b"")
        send_frame(raw, b'{"op": "put", "key": "k"}')
        assert b"missing field(s) request_id, value" in (recv_frame(raw) or b"")
        send_frame(raw, b'{"op": "get", "key": "k"}')
        assert recv_frame(raw) == b'{"kind":"value","value":null}'


def test_a_kv_client_pointed_at_the_wrong_server_says_so(framed_echo: ServerProcess) -> None:
    with KVClient(framed_echo.address) as client, pytest.raises(KVProtocolError, match="kind"):
        client.get("k")  # the echo comes back as a request, not a response


def test_restart_keeps_the_address_and_loses_the_state(kv: ServerProcess) -> None:
    with KVClient(kv.address) as client:
        client.put("a", "1", "r1")
        address = kv.address
        kv.restart()
        assert kv.address == address
        assert client.get("a") is None  # a fresh in-memory store; the client reconnected


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    server = start_builtin("framed_echo", log_path=tmp_path / "fe.log")
    with socket.create_connection(server.address, timeout=5):
        assert server.stop() == 0
    assert "stopping (1 open connections)" in server.log_text()


def test_the_command_line(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosnet.servers", "kv", "--dedupe"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    with process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("chaosnet-server kv listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with KVClient(("127.0.0.1", port)) as client:
            client.put("x", "1", "same")
            assert not client.put("x", "2", "same").applied
        process.terminate()
        assert process.wait(5) == 0
    assert wait_gone(process.pid)


def test_bad_builtin_options_are_refused_before_starting() -> None:
    with pytest.raises(ValueError, match="unknown builtin server 'redis'"):
        builtin_server("redis")
    with pytest.raises(ValueError, match="dedupe is an option of the kv server"):
        builtin_server("echo", dedupe=True)


def test_every_public_name_of_the_package_resolves() -> None:
    import chaosnet.servers

    for name in chaosnet.servers.__all__:
        assert getattr(chaosnet.servers, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = chaosnet.servers.nope


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_a_builtin_server_on_ipv6_loopback_restarts_on_its_address() -> None:
    with start_builtin("kv", host="::1") as server, KVClient(server.address) as client:
        assert server.address[0] == "::1"
        client.put("a", "1")
        address = server.address
        server.restart()
        assert server.address == address
        assert client.get("a") is None


def test_udp_echo_answers_requests_and_ignores_the_rest() -> None:
    from chaosnet.datagram import DatagramClient, NoReply, decode, encode
    from chaosnet.retry import RetryError, RetryPolicy

    with start_builtin("udp_echo") as server:
        with DatagramClient(server.address) as client:
            assert client.request(b"ping") == b"ping"
            assert client.request(bytes(1000)) == bytes(1000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.settimeout(0.2)
            raw.connect(server.address)
            raw.send(b"not a chaosnet datagram")  # malformed: no answer
            raw.send(encode("reply", 5, b"a reply"))  # not a request: no answer
            raw.send(encode("request", 6, b"ok"))
            assert decode(raw.recv(100)) == decode(encode("reply", 6, b"ok"))
            with pytest.raises(TimeoutError):
                raw.recv(100)
        address = server.address
        server.restart()
        assert server.address == address  # the same port again
        with DatagramClient(address, retry=RetryPolicy(attempts=3)) as client:
            assert client.request(b"after restart") == b"after restart"
    gone = DatagramClient(address, retry=RetryPolicy(attempts=1), timeout=0.2)
    with gone as client, pytest.raises(RetryError) as failure:
        client.request(b"nobody home")
    error = failure.value.attempts[0].error
    assert isinstance(error, NoReply | ConnectionRefusedError)
