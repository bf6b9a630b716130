"""Scenario files: declarative fault timelines with expectations (see docs/scenarios.md).

- :mod:`~chaosnet.scenario.model` -- the format (pydantic; the JSON Schema comes from it);
- :mod:`~chaosnet.scenario.loader` -- find, parse and validate files, all problems at once;
- :mod:`~chaosnet.scenario.runner` -- run one scenario: stage, workload, timeline, verdict;
- :mod:`~chaosnet.scenario.workloads` -- the builtin workloads and the context a callable gets;
- :mod:`~chaosnet.scenario.commands` -- ``chaosnet run`` and ``chaosnet validate``;
- :mod:`~chaosnet.scenario.collect` -- scenario files as pytest items.

Nothing is imported here, so the pytest plugin can import ``collect`` at startup
without loading pydantic, PyYAML and rich until a scenario file is collected.
"""

#: The file names scenario files have.
SUFFIXES = (".yaml", ".yml")
