"""Hypothesis strategies for fault schedules inside an envelope.

Everything is drawn as whole numbers with the simplest value first (the
earliest start, the shortest outage, the lowest attribute, the first choice,
the first kind listed), so Hypothesis's own shrinker, which moves towards those,
gives fewer faults, shorter durations, simpler attributes and earlier times.
Nothing here shrinks by itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from hypothesis import strategies as st

from chaosnet.explore.schedule import Fault, PathOf, Schedule, fit
from chaosnet.scenario.envelope import (
    Envelope,
    FaultKind,
    IntRange,
    Span,
    Values,
    attribute_values,
)


def schedules(
    envelope: Envelope | Mapping[str, Any],
    *,
    endpoints: Collection[str] = (),
    paths: PathOf | None = None,
) -> st.SearchStrategy[Schedule]:
    """Schedules of one to ``max_steps`` faults that keep the envelope's rules.

    ``endpoints`` names the client's endpoints (proxies) and ``paths`` which
    endpoints each target takes down (a proxy: itself; a server: the proxies in
    front of it; default: each target stands for itself). With ``keep_path_up``
    (the default for more than one endpoint) at least one endpoint is untouched
    by outages at every moment.
    """
    env = envelope if isinstance(envelope, Envelope) else Envelope.model_validate(envelope)
    chosen = frozenset(endpoints)
    keep_up = env.keep_path_up if env.keep_path_up is not None else len(chosen) > 1
    routes = paths if paths is not None else _self_paths(env)
    one = st.one_of(*(_fault(kind, env) for kind in env.faults))
    return st.lists(one, min_size=1, max_size=env.max_steps).map(
        lambda faults: fit(
            faults,
            max_active=env.max_active,
            paths=routes if keep_up and chosen else None,
            endpoints=chosen,
        )
    )


def _self_paths(env: Envelope) -> PathOf:
    return {target: frozenset([target]) for kind in env.faults for target in kind.targets}


def _fault(kind: FaultKind, env: Envelope) -> st.SearchStrategy[Fault]:
    window = _ms(env.window)
    shortest, longest = _ms(env.min_outage), _ms(env.max_outage)
    durations = st.just(0) if kind.kind == "restart" else st.integers(shortest, longest)
    if kind.kind != "toxic":
        return st.builds(
            Fault,
            kind=st.just(kind.kind),
            target=st.sampled_from(kind.targets),
            start=st.integers(0, window),
            duration=durations,
            outage=st.just(kind.takes_path_down),
        )
    return st.builds(
        Fault,
        kind=st.just("toxic"),
        target=st.sampled_from(kind.targets),
        start=st.integers(0, window),
        duration=durations,
        toxic=st.just(kind.toxic),
        stream=st.sampled_from(kind.streams),
        toxicity=st.just(kind.toxicity),
        attributes=st.fixed_dictionaries(
            {key: _drawn(values) for key, values in attribute_values(kind).items()}
        ),
        fields=st.fixed_dictionaries(
            {key: _whole(bounds) for key, bounds in kind.targeting().items()}
        ),
        outage=st.just(kind.takes_path_down),
    )


def _drawn(values: Values) -> st.SearchStrategy[Any]:
    if isinstance(values, Span):
        if isinstance(values.low, int) and isinstance(values.high, int):
            return st.integers(values.low, values.high)
        return st.floats(values.low, values.high, allow_nan=False)
    return st.sampled_from(values)


def _whole(bounds: IntRange) -> st.SearchStrategy[int]:
    return st.integers(bounds.min, bounds.max)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
