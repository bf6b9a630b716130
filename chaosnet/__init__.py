"""chaosnet: fault-injection test harness for network client code."""

__version__ = "0.1.0"
