"""One exploration: generate schedules inside a scenario's envelope, run each, shrink a failure.

The scenario's servers start once; before each example its proxies are made
anew (fresh connection logs, only the file's own toxics) and any server a
step left down or paused is brought back, so an example costs little more than
its workload. Each example is an ordinary run of the scenario with the
generated ``timeline:``, judged by the file's ``expect:`` (the hang watchdog and
the wire-observed expectations included): Hypothesis's ``@given`` does the
generating, the example database, the seeding and the shrinking.

A failing example counts only when it fails again each time it is run again
(``confirm``): shrinking moves towards the shortest faults, where timing is
tightest, and must not settle on a schedule that failed once by accident.

The search stops at the first failure, shrinks it, and keeps the smallest
failing schedule; or it stops when ``budget`` seconds or ``max_examples`` run
out with no failure. Shrinking gets up to another ``budget``; if that runs out
too, the smallest failure seen so far is kept.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky

from chaosnet.control import ControlClient
from chaosnet.explore.schedule import PathOf, Schedule
from chaosnet.explore.strategies import schedules
from chaosnet.scenario.loader import LoadedScenario
from chaosnet.scenario.model import Scenario, Step
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.runner import QuietListener, RunTarget, ScenarioRun
from chaosnet.scenario.stage import Stage

DEFAULT_BUDGET_S = 60.0
DEFAULT_MAX_EXAMPLES = 10_000
#: A failing example is run this many more times and kept only if it fails each time,
#: so that shrinking, which moves towards the shortest faults, cannot settle on a
#: schedule that failed once by a scheduling accident.
DEFAULT_CONFIRM = 2
#: The failure written out must fail this many runs in a row (see Explorer._verify).
DEFAULT_VERIFY = 5


@dataclass
class Example:
    """One generated schedule and how the scenario fared under it."""

    number: int
    schedule: Schedule
    result: ScenarioResult

    @property
    def failed(self) -> bool:
        return self.result.status != "passed"


@dataclass
class Exploration:
    """What one exploration did and found."""

    scenario: LoadedScenario
    seed: int
    examples: int = 0
    seconds: float = 0.0
    failure: Example | None = None
    first_failure: Example | None = None
    failures_seen: int = 0
    unconfirmed: int = 0  # failing examples that passed when run again: timing accidents
    stopped_by: str = "examples"  # "examples", "budget", "failure", "interrupt"
    flaky: bool = False
    verified: bool | None = None  # the kept failure failed DEFAULT_VERIFY more runs in a row
    kinds: Counter[str] = field(default_factory=Counter)
    combinations: Counter[tuple[str, ...]] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


class _BudgetSpent(BaseException):
    """Out of time: Hypothesis lets a BaseException through without shrinking it."""


class _ExampleFailed(AssertionError):
    def __init__(self, example: Example) -> None:
        super().__init__(f"example {example.number} failed: {example.schedule.describe()}")
        self.example = example


def endpoint_paths(spec: Scenario) -> PathOf:
    """Which client endpoints each proxy and each server takes down when it is down."""
    endpoints = set(spec.client.endpoints)
    paths: dict[str, frozenset[str]] = {
        name: frozenset({name} & endpoints) for name in spec.proxies
    }
    for name in spec.servers:
        paths[name] = frozenset(
            proxy for proxy, p in spec.proxies.items() if p.server == name and proxy in endpoints
        )
    return paths


def with_schedule(scenario: LoadedScenario, schedule: Schedule) -> LoadedScenario:
    """The scenario with the schedule as its timeline (after the file's own steps)."""
    steps = [Step.model_validate(step) for step in schedule.steps()]
    spec = scenario.spec.model_copy(update={"timeline": [*scenario.spec.timeline, *steps]})
    return dataclasses.replace(scenario, spec=spec)


class Explorer:
    """Explores one scenario's envelope against a started control server."""

    def __init__(
        self,
        scenario: LoadedScenario,
        control: ControlClient,
        *,
        seed: int,
        backend: str,
        budget: float = DEFAULT_BUDGET_S,
        max_examples: int = DEFAULT_MAX_EXAMPLES,
        database: Path | None = None,
        take_backend_errors: Callable[[], list[BaseException]] = list,
        in_process_proxy: bool = False,
        on_example: Callable[[Example], None] = lambda example: None,
        confirm: int = DEFAULT_CONFIRM,
        verify: int = DEFAULT_VERIFY,
    ) -> None:
        if scenario.spec.explore is None:
            raise ValueError(f"{scenario.path}: the scenario has no explore: section")
        self.scenario = scenario
        self.envelope = scenario.spec.explore
        self.target = RunTarget(control, seed, backend, take_backend_errors, in_process_proxy)
        self.seed = seed
        self.budget = budget
        self.max_examples = max_examples
        self.database = database
        self.on_example = on_example
        self.confirm = confirm
        self.verify = verify
        self.outcome = Exploration(scenario=scenario, seed=seed)
        self._failures: list[Example] = []
        self._started = 0.0

    def explore(self) -> Exploration:
        first = self._run(self.scenario)
        stage = first.stage()
        stage.start()
        self._started = time.monotonic()
        try:
            self._search(stage)
            self._verify(stage)
        except KeyboardInterrupt:
            self.outcome.stopped_by = "interrupt"
            self._keep_smallest()
            raise
        finally:
            self.outcome.seconds = time.monotonic() - self._started
            stage.close()
        return self.outcome

    # -- the search --------------------------------------------------------------------------

    def _search(self, stage: Stage) -> None:
        spec = self.scenario.spec
        strategy = schedules(
            self.envelope, endpoints=spec.client.endpoints, paths=endpoint_paths(spec)
        )

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            database=self._database(),
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            print_blob=False,
        )
        @given(strategy)
        def survives(schedule: Schedule) -> None:
            self._check_time()
            example = self._example(stage, schedule)
            if example.failed:
                raise _ExampleFailed(example)

        try:
            hypothesis_seed(self.seed)(survives)()
        except _ExampleFailed as exc:  # the shrunk example, replayed last by Hypothesis
            self.outcome.stopped_by = "failure"
            self.outcome.failure = exc.example
        except _BudgetSpent:
            self.outcome.stopped_by = "budget"
            self._keep_smallest()
        except Flaky:  # a failure that did not fail again: timing; keep what failed
            self.outcome.flaky = True
            self.outcome.stopped_by = "failure"
            self._keep_smallest()
        else:
            self.outcome.stopped_by = "examples"

    def _verify(self, stage: Stage) -> None:
        """Keep the smallest failure that fails every one of ``verify`` more runs.

        The written scenario must fail when run again; a shrunk schedule sits where
        timing is tightest, so it is checked, and a larger recorded failure that
        does reproduce is kept when the smallest does not.
        """
        if self.outcome.failure is None:
            return
        smallest_first = sorted(
            {id(e): e for e in [self.outcome.failure, *self._failures]}.values(),
            key=lambda e: e.schedule.size(),
        )
        for example in smallest_first:
            scenario = with_schedule(self.scenario, example.schedule)
            runs = [self._run(scenario).run_on(stage) for _ in range(self.verify)]
            if all(r.status != "passed" for r in runs):
                self.outcome.failure = example
                self.outcome.verified = True
                return
        self.outcome.verified = False

    def _database(self) -> ExampleDatabase | None:
        if self.database is None:
            return None
        return DirectoryBasedExampleDatabase(str(self.database / self.scenario.name))

    def _check_time(self) -> None:
        spent = time.monotonic() - self._started
        limit = self.budget * (2 if self._failures else 1)  # shrinking gets a budget of its own
        if spent >= limit:
            raise _BudgetSpent

    def _keep_smallest(self) -> None:
        if self._failures:
            self.outcome.failure = min(self._failures, key=lambda e: e.schedule.size())

    # -- one example ------------------------------------------------------------------------

    def _example(self, stage: Stage, schedule: Schedule) -> Example:
        self.outcome.examples += 1
        scenario = with_schedule(self.scenario, schedule)
        result = self._run(scenario).run_on(stage)
        for _ in range(self.confirm if result.status != "passed" else 0):
            again = self._run(scenario).run_on(stage)
            if again.status == "passed":  # it fails only sometimes: not a schedule to keep
                self.outcome.unconfirmed += 1
                result = again
                break
        example = Example(self.outcome.examples, schedule, result)
        kinds = schedule.kinds()
        self.outcome.kinds.update(kinds)
        if len(kinds) > 1:
            self.outcome.combinations[tuple(sorted(kinds))] += 1
        if example.failed:
            self._failures.append(example)
            self.outcome.failures_seen += 1
            if self.outcome.first_failure is None:
                self.outcome.first_failure = example
        self.on_example(example)
        return example

    def _run(self, scenario: LoadedScenario) -> ScenarioRun:
        return self.target.scenario_run(scenario, QuietListener())
