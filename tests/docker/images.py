"""The Docker images the test-suite needs, built here from local files: no registry is reachable.

- ``TOXIPROXY_IMAGE``: ``FROM scratch`` holding the statically built
  ``.tools/bin/toxiproxy-server`` at ``/toxiproxy``, the layout of the upstream
  image, so ``DockerBackend`` runs it exactly as it runs
  ``ghcr.io/shopify/toxiproxy``. It gets a tag of its own, passed through the
  backend's image option, rather than the upstream name: a developer's real
  upstream image is never shadowed by ours, and the override path is tested.
- ``RUNTIME_IMAGE``: this interpreter, its standard library (minus tests, GUI and
  build leftovers) and the shared libraries they link, each at its host path so
  the interpreter finds its prefix as it does here. Rebuilt only when the
  interpreter changes.
- ``SERVERS_IMAGE``: ``FROM`` the runtime, plus the chaosnet package; its
  entrypoint is ``python -m chaosnet.servers``, so the command is ``KIND --port P``.
- ``CHAOSNET_IMAGE``: the repository's own ``Dockerfile``, built as its header
  says (``pip install --target build/docker-site .``, then the build), with
  ``PYTHON_IMAGE`` set to ``PYTHON_CLI_IMAGE``: the runtime plus a ``python3``
  on PATH, which is all the Dockerfile needs of its base.

This is test infrastructure, not a chaosnet feature: copying a host's
interpreter into an image suits a machine without a registry, not a user's
project, whose images come from Dockerfiles and registries.

Each image carries a label with the hash of its inputs; an image whose label
matches is reused, so a warm build costs a few stat calls and one API call. A
file lock makes xdist workers build once.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from docker import DockerClient
from docker.errors import BuildError, ImageNotFound

from chaosnet.scenario.check import battery_files
from tests import toolchain

TOXIPROXY_IMAGE = f"chaosnet-test/toxiproxy:{toolchain.TOXIPROXY_VERSION}"
RUNTIME_IMAGE = f"chaosnet-test/python:{sys.version_info.major}.{sys.version_info.minor}"
SERVERS_IMAGE = "chaosnet-test/servers:latest"
PYTHON_CLI_IMAGE = f"{RUNTIME_IMAGE}-cli"
CHAOSNET_IMAGE = "chaosnet-test/chaosnet:latest"
DOCKERFILE = toolchain.ROOT / "Dockerfile"
DOCKER_SITE = toolchain.ROOT / "build" / "docker-site"
PIP_TIMEOUT_S = 300
INPUTS_LABEL = "chaosnet-test.inputs"
LOCK_PATH = toolchain.ROOT / ".tools" / "docker-images.lock"
LOCK_TIMEOUT_S = 120.0
PACKAGE_DIR = toolchain.ROOT / "chaosnet"
PACKAGE_HOME = "/opt/chaosnet"

#: Parts of the standard library no server needs: tests, GUI, build and packaging leftovers.
_STDLIB_SKIP_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "lib2to3",
        "distutils",
        "pydoc_data",
    }
)
_SKIP_EXTENSIONS = re.compile(r"^(_tkinter|_test|_xx|xx|_ctypes_test)")


@dataclass(frozen=True)
class Built:
    tag: str
    rebuilt: bool
    seconds: float


# ----------------------------------------------------------------------------- public


def ensure_toxiproxy_image(client: DockerClient, server: Path) -> Built:
    problem = static_binary_problem(server)
    if problem:
        raise RuntimeError(f"cannot put {server} in a FROM scratch image: {problem}")
    dockerfile = "\n".join(
        [
            "FROM scratch",
            "COPY toxiproxy /toxiproxy",
            "ENV LOG_LEVEL=info",
            'ENTRYPOINT ["/toxiproxy"]',
            'CMD ["-host=0.0.0.0"]',
        ]
    )
    return ensure_image(client, TOXIPROXY_IMAGE, dockerfile, [("toxiproxy", server)])


def ensure_runtime_image(client: DockerClient) -> Built:
    files = sorted(set(_runtime_files()))
    dockerfile = "FROM scratch\nCOPY rootfs/ /\n"
    return ensure_image(client, RUNTIME_IMAGE, dockerfile, [(f"rootfs{p}", Path(p)) for p in files])


def ensure_servers_image(client: DockerClient) -> Built:
    runtime = client.images.get(RUNTIME_IMAGE)
    python = interpreter()
    dockerfile = "\n".join(
        [
            f"FROM {RUNTIME_IMAGE}",
            f"COPY chaosnet {PACKAGE_HOME}/chaosnet",
            f"ENV PYTHONPATH={PACKAGE_HOME} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
            f'ENTRYPOINT ["{python}", "-m", "chaosnet.servers"]',
            f"# runtime {runtime.id}",  # a new runtime image means a new servers image
        ]
    )
    package = [
        (f"chaosnet/{path.relative_to(PACKAGE_DIR)}", path)
        for path in sorted(PACKAGE_DIR.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return ensure_image(client, SERVERS_IMAGE, dockerfile, package, content_hash=True)


def ensure_chaosnet_image(client: DockerClient) -> Built:
    """The repository's Dockerfile, built on a local base (no registry)."""
    runtime = client.images.get(RUNTIME_IMAGE)
    base = "\n".join([f"FROM {RUNTIME_IMAGE}", "COPY bin/ /usr/local/bin/", f"# {runtime.id}"])
    ensure_image(client, PYTHON_CLI_IMAGE, base, [], links=[("bin/python3", interpreter())])
    site = _docker_site()
    files = [
        (f"build/docker-site/{path.relative_to(site)}", path)
        for path in sorted(site.rglob("*"))
        if path.is_file()  # with pip's compiled __pycache__: a start imports, not compiles
    ]
    return ensure_image(
        client,
        CHAOSNET_IMAGE,
        DOCKERFILE.read_text(),
        files,
        buildargs={"PYTHON_IMAGE": PYTHON_CLI_IMAGE},
    )


def _docker_site() -> Path:
    """``pip install --target build/docker-site .`` as the Dockerfile says, when inputs changed."""
    sources = [toolchain.ROOT / "pyproject.toml", *sorted(PACKAGE_DIR.rglob("*.py"))]
    sources += sorted(PACKAGE_DIR.rglob("*.json")) + battery_files()  # package data too
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path).encode() + hashlib.sha256(path.read_bytes()).digest())
    stamp = DOCKER_SITE / ".inputs"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return DOCKER_SITE
    shutil.rmtree(DOCKER_SITE, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(DOCKER_SITE), "."],
        cwd=toolchain.ROOT,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install --target {DOCKER_SITE} failed:\n{done.stderr[-2000:]}")
    stamp.write_text(digest.hexdigest())
    return DOCKER_SITE


def static_binary_problem(path: Path) -> str | None:
    """None if ``path`` is a static ELF executable (no program interpreter), else why not."""
    try:
        with path.open("rb") as elf:
            header = elf.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:
                return "not a 64-bit ELF executable"
            order = "<" if header[5] == 1 else ">"
            (phoff,) = struct.unpack_from(order + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 0x36)
            elf.seek(phoff)
            table = elf.read(phentsize * phnum)
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    for index in range(phnum):
        (p_type,) = struct.unpack_from(order + "I", table, index * phentsize)
        if p_type == 3:  # PT_INTERP: it needs a dynamic loader and shared libraries
            return "it is dynamically linked (build it with CGO_ENABLED=0)"
    return None


# ----------------------------------------------------------------------------- building


def ensure_image(
    client: DockerClient,
    tag: str,
    dockerfile: str,
    files: list[tuple[str, Path]],
    *,
    content_hash: bool = False,
    links: list[tuple[str, str]] | None = None,
    buildargs: dict[str, str] | None = None,
) -> Built:
    """Build ``tag`` from ``dockerfile`` and ``files`` (context name, path), plus symbolic
    ``links`` (context name, target) and build arguments, unless an image with the same
    inputs' hash exists; the image it replaces goes if nothing uses it."""
    started = time.monotonic()
    extra = repr((links, sorted((buildargs or {}).items())))
    digest = _digest(dockerfile + extra, files, content_hash)
    try:
        existing = client.images.get(tag)
    except ImageNotFound:
        existing = None
    if existing is not None and existing.labels.get(INPUTS_LABEL) == digest:
        return Built(tag, False, time.monotonic() - started)
    with tempfile.TemporaryFile() as context:
        _write_context(context, dockerfile, files, links or [])
        context.seek(0)
        try:
            client.images.build(
                fileobj=context,
                custom_context=True,
                buildargs=buildargs,
                tag=tag,
                labels={INPUTS_LABEL: digest},
                rm=True,
                forcerm=True,
                pull=False,
            )
        except BuildError as exc:
            log = "".join(str(step.get("stream", "")) for step in exc.build_log)
            raise RuntimeError(f"building {tag} failed: {exc}\n{log[-2000:]}") from None
    if existing is not None:
        _drop_if_dangling(client, existing.id)
    return Built(tag, True, time.monotonic() - started)


def _digest(dockerfile: str, files: list[tuple[str, Path]], content: bool) -> str:
    """Content for small inputs; size and mtime for the interpreter's installed files."""
    digest = hashlib.sha256(dockerfile.encode())
    for name, path in files:
        digest.update(name.encode() + b"\0")
        if content:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            info = path.stat()
            digest.update(f"{info.st_size}:{info.st_mtime_ns}:{info.st_mode}".encode())
    return digest.hexdigest()


def _write_context(
    out: BinaryIO,
    dockerfile: str,
    files: list[tuple[str, Path]],
    links: list[tuple[str, str]],
) -> None:
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, path in files:
            tar.add(os.path.realpath(path), arcname=name, recursive=False)
        for name, target in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)


def _drop_if_dangling(client: DockerClient, image_id: str | None) -> None:
    """The image a rebuild replaced, if nothing else uses it (best effort)."""
    if image_id is None:
        return
    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id, noprune=False)
    except Exception:  # in use by a container, or removed by a parallel build
        return


class BuildLock:
    """An exclusive file lock, waited for at most LOCK_TIMEOUT_S (xdist workers build once)."""

    def __enter__(self) -> None:
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        self._file = LOCK_PATH.open("w")
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        delay = 0.01
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._file.close()
                    raise TimeoutError(f"another process holds {LOCK_PATH} for too long") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


# ----------------------------------------------------------------------------- the runtime


def interpreter() -> str:
    return os.path.realpath(sys.executable)


def _runtime_files() -> Iterator[str]:
    """The interpreter, its standard library and every shared library they need."""
    python = interpreter()
    yield python
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix})["stdlib"])
    extensions: list[str] = []
    for path in _stdlib_files(stdlib):
        yield str(path)
        if path.suffix == ".so":
            extensions.append(str(path))
    yield from _shared_libraries([python, *extensions])


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in _STDLIB_SKIP_DIRS and not d.startswith("config-")]
        for name in names:
            if name.endswith((".opt-1.pyc", ".opt-2.pyc")) or _SKIP_EXTENSIONS.match(name):
                continue
            yield Path(folder, name)


def _shared_libraries(binaries: Iterable[str]) -> Iterator[str]:
    """What ``ldd`` says they load (including the dynamic loader itself), at those paths."""
    listing = subprocess.run(
        ["ldd", *binaries], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    for line in listing.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            yield match.group(1)
