"""``chaosnet serve`` as a user runs it: a real child process, signals, config, errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import chaosnet
from tests.proxy.support import Api, Upstream, listen_address, round_trip, wait_for

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 20.0


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chaosnet.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )


def ready_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("chaosnet serve: listening on http://127.0.0.1:"), line
    return line.split()[-1]


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_stops_cleanly_on_signals(echo_server: Upstream, signum: int) -> None:
    process = serve("--port", "0", "--seed", "42")
    url = ready_url(process)
    api = Api(url)
    assert api.get("/chaosnet").body["seed"] == 42
    address = listen_address(api.create_proxy("p", echo_server.address))
    assert round_trip(address) == b"ping"
    live = socket.create_connection(address, timeout=5)
    api.close()
    process.send_signal(signum)
    code, _, err = finish(process)
    assert code == 0
    assert "Traceback" not in err
    assert "seed 42" in err
    assert live.recv(10) == b""  # its connections were closed
    live.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)


def test_config_creates_proxies(tmp_path: Path, echo_server: Upstream) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "from-config",
                    "listen": "127.0.0.1:0",
                    "upstream": f"127.0.0.1:{echo_server.port}",
                },
                {
                    "name": "off",
                    "listen": "127.0.0.1:0",
                    "upstream": "127.0.0.1:9",
                    "enabled": False,
                },
            ]
        )
    )
    process = serve("--port", "0", "--config", str(config))
    try:
        api = Api(ready_url(process))
        proxies = api.get("/proxies").body
        api.close()
        assert set(proxies) == {"from-config", "off"}
        assert proxies["off"]["enabled"] is False
        assert round_trip(listen_address(proxies["from-config"])) == b"ping"
    finally:
        process.terminate()
        finish(process)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "bad request body"),
        ('{"name": "x"}', "expected a JSON array"),
        ('[{"upstream": "127.0.0.1:9"}]', "missing required field: name at proxy 1"),
        (
            '[{"name": "x", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:99999"}]',
            "port 99999 out of range",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "bad.json"
    config.write_text(content)
    code, out, err = finish(serve("--port", "0", "--config", str(config)))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert str(config) in err
    assert fragment in err


def test_missing_config_file(tmp_path: Path) -> None:
    code, _, err = finish(serve("--port", "0", "--config", str(tmp_path / "nope.json")))
    assert code == 2
    assert "cannot read config" in err
    assert "Traceback" not in err


def test_taken_port_is_one_line_and_exit_2() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        code, _, err = finish(serve("--port", str(taken.getsockname()[1])))
    finally:
        taken.close()
    assert code == 2
    assert "cannot listen on 127.0.0.1:" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_config_proxy_on_taken_port_is_exit_2(tmp_path: Path) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "x",
                    "upstream": "127.0.0.1:9",
                    "listen": f"127.0.0.1:{taken.getsockname()[1]}",
                }
            ]
        )
    )
    try:
        code, _, err = finish(serve("--port", "0", "--config", str(config)))
    finally:
        taken.close()
    assert code == 2
    assert "cannot listen" in err
    assert "Traceback" not in err


def test_running_out_of_descriptors_hurts_only_the_new_connections(echo_server: Upstream) -> None:
    limited = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
        "from chaosnet.cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", limited],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    try:
        api = Api(ready_url(process))
        address = listen_address(api.create_proxy("p", echo_server.address))
        clients = []
        for _ in range(40):
            # A reset before connect() returns: refused at once for lack of descriptors.
            with contextlib.suppress(ConnectionResetError):
                clients.append(socket.create_connection(address, timeout=0.5))
        served = 0
        for sock in clients:
            try:
                sock.sendall(b"x")
                served += sock.recv(1) == b"x"
            except OSError:
                pass  # reset or timed out: this connection got no descriptors
        assert 5 <= served < 40
        for sock in clients:
            sock.close()

        def all_handled() -> bool:
            log = api.get("/proxies/p/connections").body
            return bool(log["opened"] == 40 and log["open"] == 0)

        wait_for(all_handled)  # every queued client accepted, and every descriptor freed
        assert round_trip(address) == b"ping"
        assert api.get("/version").status == 200
        api.close()
    finally:
        process.terminate()
        code, _, err = finish(process)
    assert code == 0
    assert "Traceback" not in err


def test_history_bounds_the_connection_log(echo_server: Upstream) -> None:
    process = serve("--port", "0", "--history", "3", "--buffer-limit", "1048576")
    try:
        api = Api(ready_url(process))
        address = listen_address(api.create_proxy("h", echo_server.address))
        for _ in range(5):
            assert round_trip(address) == b"ping"
        log = api.get("/proxies/h/connections?wait_open=0&timeout_ms=5000").body
        assert (log["opened"], log["history"]) == (5, 3)
        assert [record["id"] for record in log["connections"]] == [3, 4, 5]
        api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert finish(process)[0] == 0


@pytest.mark.parametrize(("flag", "value"), [("--history", "0"), ("--buffer-limit", "lots")])
def test_bad_sizes_are_usage_errors(flag: str, value: str) -> None:
    code, _, err = finish(serve("--port", "0", flag, value))
    assert code == 2
    assert f"argument {flag}:" in err
    assert "Traceback" not in err


def test_takes_toxiproxy_servers_command_line(tmp_path: Path, echo_server: Upstream) -> None:
    """The flags a script or image passes to toxiproxy-server, single-dash and ``=value``."""
    config = tmp_path / "toxiproxy.json"
    upstream = f"127.0.0.1:{echo_server.port}"
    config.write_text(json.dumps([{"name": "db", "listen": "127.0.0.1:0", "upstream": upstream}]))
    process = serve(
        "-host=127.0.0.1",
        "-port",
        "0",
        "-seed",
        "7",
        "-config",
        str(config),
        "-proxy-metrics",
        "--runtime-metrics=false",
    )
    try:
        api = Api(ready_url(process))
        assert api.get("/chaosnet").body["seed"] == 7
        assert list(api.get("/proxies").body) == ["db"]
        metrics = api.get("/metrics")
        api.close()
        assert metrics.status == 200
        assert "chaosnet_connections_opened_total" in metrics.body
        assert "process_cpu_seconds_total" not in metrics.body  # -runtime-metrics=false
    finally:
        process.terminate()
        finish(process)


@pytest.mark.parametrize("flag", ["-version", "--version", "-version=true"])
def test_version_flag_prints_and_exits(flag: str) -> None:
    code, out, err = finish(serve(flag))
    assert (code, err) == (0, "")
    assert out == f"chaosnet serve version {chaosnet.__version__} (Toxiproxy API 2.12.0)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-proxy-metrics=maybe"], "invalid boolean value 'maybe' for -proxy-metrics"),
        (["-runtime-metrics=yes"], "invalid boolean value 'yes' for -runtime-metrics"),
    ],
)
def test_bad_toxiproxy_flag_value_is_one_line(args: list[str], message: str) -> None:
    code, out, err = finish(serve(*args))
    assert (code, out) == (2, "")
    assert err == f"chaosnet: error: {message}\n"
