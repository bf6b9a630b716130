"""``chaosnet run`` with Toxiproxy in Docker (``--backend docker``) in front of a containerised
server: the whole chain from the command line, faults and server steps on the timeline."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from chaosnet.servers import ownership
from tests import toolchain

SCENARIO = """\
name: container-behind-toxiproxy-in-docker
servers:
  echo:
    docker:
      image: {image}
      command: [framed_echo, --port, "{{port}}"]
      ready:
        log: 'listening on 127\\.0\\.0\\.1:(?P<port>\\d+)$'
proxies:
  main: {{server: echo}}
client:
  workload: framed
  endpoints: main
  requests: 20
  rate: 40/s
  timeout: 250ms
  retry: {{attempts: 60, deadline: 8s, initial: 10ms, cap: 50ms}}
timeline:
  - at: 100ms
    add_toxic: {{proxy: main, type: reset_peer, name: reset, timeout: 0}}
  - at: 200ms
    remove_toxic: {{proxy: main, name: reset}}
  - at: 250ms
    pause: echo
  - at: 350ms
    resume: echo
  - at: 400ms
    restart: echo
expect:
  all_answered: true
  recovered_within: 5s
"""


def test_a_scenario_runs_on_toxiproxy_in_docker_against_a_container(
    servers_image: str, toxiproxy_image: str, tmp_path: Path
) -> None:
    run_id = f"scenario-{uuid.uuid4().hex[:8]}"
    scenario = tmp_path / "container.yaml"
    scenario.write_text(SCENARIO.format(image=servers_image))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosnet.cli",
            "run",
            str(scenario),
            "--backend",
            "docker",
            "--docker-image",
            toxiproxy_image,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(toolchain.ROOT), CHAOSNET_RUN_ID=run_id),
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "container-behind-toxiproxy-in-docker: PASSED" in output
    for step in ("add reset_peer reset to main", "pause server echo", "restart server echo"):
        assert step in output
    runs = [
        c["Labels"][ownership.RUN_LABEL] for c in ownership.labelled_containers(mine_only=False)
    ]
    assert run_id not in runs  # the run removed its containers (Toxiproxy's and the server's)
