"""chaosnet's pytest plugin: wiring only (options, fixtures, markers, reports)."""
