"""The one exception type for bad input to lossfuzz: the CLI prints it as one line, exit 2.

Anything else that escapes is a bug in lossfuzz and keeps its traceback.
"""


class UsageError(ValueError):
    """Bad input from the user: a name, a number, a file, a path."""
