"""Fault exploration: generated fault schedules, shrunk to the smallest one that fails.

Needs Hypothesis: ``pip install chaosnet[explore]``. The envelope (what may be
generated) is part of the scenario format (:mod:`chaosnet.scenario.envelope`)
and is validated without it.

- :func:`schedules` is a Hypothesis strategy of :class:`Schedule` inside an envelope,
  for ``@given`` in a user's own tests, and :func:`run_schedule` applies one to the
  test's proxies while its workload runs;
- :class:`Explorer` runs a scenario file's envelope (``chaosnet explore FILE``).
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    from chaosnet.errors import ChaosnetError

    raise ChaosnetError(
        "fault exploration needs Hypothesis: pip install 'chaosnet[explore]'"
    ) from exc

from chaosnet.explore.apply import ScheduleRun, run_schedule
from chaosnet.explore.schedule import Fault, Schedule
from chaosnet.explore.strategies import schedules
from chaosnet.scenario.envelope import Envelope

__all__ = ["Envelope", "Fault", "Schedule", "ScheduleRun", "run_schedule", "schedules"]
