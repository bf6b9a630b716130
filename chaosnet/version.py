"""chaosnet's version, in a leaf module: the engine reports it without importing the
``chaosnet`` facade (which names the engine's modules, so that would be a cycle)."""

__version__ = "0.1.0"
