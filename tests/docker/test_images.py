"""The locally built test images: static Toxiproxy, upstream layout, cached by input hash."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from chaosnet.servers.docker_engine import docker_client
from tests.docker import images


def test_the_toxiproxy_binary_is_static_and_a_python_is_not(
    toxiproxy_bins: tuple[Path, Path], tmp_path: Path
) -> None:
    assert images.static_binary_problem(toxiproxy_bins[0]) is None
    assert "dynamically linked" in (images.static_binary_problem(Path(sys.executable)) or "")
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    assert images.static_binary_problem(text) == "not a 64-bit ELF executable"


def test_the_toxiproxy_image_has_the_upstream_layout(toxiproxy_image: str) -> None:
    with docker_client() as client:
        config = client.images.get(toxiproxy_image).attrs["Config"]
    assert config["Entrypoint"] == ["/toxiproxy"]
    assert config["Cmd"] == ["-host=0.0.0.0"]


def test_an_image_is_rebuilt_only_when_its_inputs_change(
    docker_engine: None, tmp_path: Path
) -> None:
    tag = "chaosnet-test/cache-probe:latest"
    source = tmp_path / "payload.txt"
    source.write_text("one")
    dockerfile = "FROM scratch\nCOPY payload.txt /payload.txt\n"
    with docker_client() as client:
        try:
            first = images.ensure_image(
                client, tag, dockerfile, [("payload.txt", source)], content_hash=True
            )
            first_id = client.images.get(tag).id
            warm = images.ensure_image(
                client, tag, dockerfile, [("payload.txt", source)], content_hash=True
            )
            assert not warm.rebuilt
            assert client.images.get(tag).id == first_id
            source.write_text("two")
            changed = images.ensure_image(
                client, tag, dockerfile, [("payload.txt", source)], content_hash=True
            )
            assert changed.rebuilt
            assert client.images.get(tag).id != first_id
            with pytest.raises(ImageNotFound):
                client.images.get(first_id)  # the replaced image did not linger
        finally:
            client.images.remove(tag, force=True)
    assert first.tag == tag
