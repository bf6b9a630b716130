"""A scenario whose server is a Docker container (host network, loopback), with faults."""

from __future__ import annotations

from chaosnet.servers import ownership
from tests.scenario.conftest import RecordingListener, RunText

CONTAINER_SCENARIO = """\
servers:
  echo:
    docker:
      image: {image}
      command: [framed_echo, --port, "{{port}}"]
      ready:
        log: 'listening on \\[?(?P<host>[^\\]\\s]+?)\\]?:(?P<port>\\d+)$'
        timeout: 20s
proxies:
  main: {{server: echo}}
client:
  workload: framed
  endpoints: main
  requests: 30
  rate: 20/s
  timeout: 250ms
  retry: {{attempts: 60, deadline: 8s, initial: 20ms, cap: 100ms}}
timeline:
  - at: 200ms
    pause: echo
  - at: 400ms
    resume: echo
  - at: 600ms
    restart: echo
expect:
  all_answered: true
  recovered_within: 5s
"""


def test_a_containerised_server_survives_pause_and_restart(
    run_text: RunText, servers_image: str
) -> None:
    listener = RecordingListener()
    result = run_text(CONTAINER_SCENARIO.format(image=servers_image), listener=listener)
    assert result.status == "passed", result.error or [e.detail for e in result.failures]
    assert [e.description for e in result.events] == [
        "pause server echo",
        "resume server echo",
        "restart server echo",
    ]
    assert all(e.ok for e in result.events)
    assert not listener.servers["echo"].running  # stopped, and its container removed
    assert ownership.labelled_containers() == []
