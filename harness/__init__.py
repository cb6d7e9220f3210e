"""lossfuzz's engine: implementations under test, strategies, runner, metrics, CLI.

Importing ``harness`` imports no framework; backends load on first use.
"""

__version__ = "0.1.0"
