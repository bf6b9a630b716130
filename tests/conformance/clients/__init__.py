"""Real Toxiproxy clients of other languages, installed from their registries on first use.

Each ``*_calls`` program makes every call its client has against one server and
prints a transcript, one JSON line per call (``{"call", "result"}`` or
``{"call", "error"}``). The test runs it against ``chaosnet serve`` and the real
Toxiproxy and compares the transcripts, the listen ports (the kernel's choice)
aside. Installs are cached in ``.tools/`` and locked, so xdist workers install once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests import toolchain

HERE = Path(__file__).resolve().parent
NODE_CLIENT = "toxiproxy-node-client@4.1.0"
NODE_HOME = toolchain.ROOT / ".tools" / "node-client"
GO_SOURCE = HERE / "go" / "main.go"
GO_HOME = toolchain.ROOT / ".tools" / "go-client"
JAVA_SOURCES = HERE / "java"
JAVA_HOME = toolchain.ROOT / ".tools" / "java-client"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120
_PORT = re.compile(r'("listen":"[^"]*:)\d+"')

Transcript = list[dict[str, Any]]


class ClientError(Exception):
    """A client could not be installed or its program did not run to the end."""


def _run(argv: list[str], what: str, **options: Any) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=INSTALL_TIMEOUT_S, **options
        )
    except subprocess.CalledProcessError as exc:
        raise ClientError(f"{what} failed:\n{(exc.stdout + exc.stderr)[-3000:]}") from None
    except subprocess.TimeoutExpired:
        raise ClientError(f"{what} did not finish in {INSTALL_TIMEOUT_S} s") from None
    return done.stdout


def node_client() -> Path | str:
    """The node_modules holding the client, installed once; or why it cannot be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node and npm are needed to run toxiproxy-node-client"
    modules = NODE_HOME / "node_modules"
    NODE_HOME.mkdir(parents=True, exist_ok=True)
    with open(NODE_HOME / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (modules / "toxiproxy-node-client" / "package.json").exists():
            _run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(NODE_HOME),
                    "--no-audit",
                    "--no-fund",
                    NODE_CLIENT,
                ],
                f"npm install {NODE_CLIENT}",
            )
    return modules


def node_transcript(modules: Path, url: str, upstream: str) -> Transcript:
    out = _run(
        ["node", str(HERE / "node_calls.js"), url, upstream],
        "node_calls.js",
        env=dict(os.environ, NODE_PATH=str(modules)),
    )
    return parse(out, url)


def go_client() -> Path | str:
    """The compiled Go program (Toxiproxy's client at the server's version), built once."""
    go = shutil.which("go")
    if go is None:
        return "a Go toolchain is needed to build the Go client's program"
    binary = GO_HOME / "go-calls"
    GO_HOME.mkdir(parents=True, exist_ok=True)
    with open(GO_HOME / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists() or binary.stat().st_mtime < GO_SOURCE.stat().st_mtime:
            with tempfile.TemporaryDirectory(prefix="go-calls-") as scratch:
                work = Path(scratch)
                module = f"{toolchain.TOXIPROXY_MODULE} v{toolchain.TOXIPROXY_VERSION}"
                (work / "go.mod").write_text(f"module gocalls\n\ngo 1.22\n\nrequire {module}\n")
                shutil.copy(GO_SOURCE, work / "main.go")
                env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
                _run([go, "mod", "tidy"], "go mod tidy (the Go client)", cwd=work, env=env)
                _run([go, "build", "-o", str(binary), "."], "go build", cwd=work, env=env)
    return binary


def go_transcript(binary: Path, url: str, upstream: str) -> Transcript:
    return parse(_run([str(binary), url, upstream], "go-calls"), url)


def java_client() -> Path | str:
    """A directory with ``lib/`` (toxiproxy-java 2.1.7 and gson) and the compiled
    ``classes/``, built once; or why it cannot be."""
    mvn, javac = shutil.which("mvn"), shutil.which("javac")
    if mvn is None or javac is None or shutil.which("java") is None:
        return "java, javac and mvn are needed to run toxiproxy-java"
    lib, classes = JAVA_HOME / "lib", JAVA_HOME / "classes"
    source = JAVA_SOURCES / "JavaCalls.java"
    JAVA_HOME.mkdir(parents=True, exist_ok=True)
    with open(JAVA_HOME / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(lib.glob("toxiproxy-java-*.jar")):
            _run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(JAVA_SOURCES / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={lib}",
                ],
                "mvn dependency:copy-dependencies (toxiproxy-java 2.1.7)",
            )
        compiled = classes / "JavaCalls.class"
        if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
            classes.mkdir(exist_ok=True)
            _run([javac, "-cp", f"{lib}/*", "-d", str(classes), str(source)], "javac JavaCalls")
    return JAVA_HOME


def java_transcript(home: Path, url: str, upstream: str) -> Transcript:
    host, _, port = url.removeprefix("http://").rpartition(":")
    classpath = f"{home / 'classes'}:{home / 'lib'}/*"
    out = _run(["java", "-cp", classpath, "JavaCalls", host, port, upstream], "JavaCalls")
    return parse(out, url)


def parse(output: str, url: str = "") -> Transcript:
    """The transcript, listen ports replaced by ``<port>`` and the server's URL by
    ``<server>``; a fatal line is an error."""
    if url:
        output = output.replace(url, "<server>")
    lines = [json.loads(_PORT.sub(r'\1<port>"', line)) for line in output.splitlines() if line]
    fatal = [line for line in lines if line["call"] == "fatal"]
    if fatal:
        raise ClientError(f"the client program stopped: {fatal[0]['error']}")
    return lines
