"""lossfuzz's engine: implementations under test, strategies, the runner, metrics, the CLI.

Installed as ``lossfuzz.harness``. Importing it imports no framework; backends load
on first use.
"""
