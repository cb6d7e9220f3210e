"""lossfuzz's exceptions for bad input, and the one way an exception is shown in a line.

A ``UsageError`` is the user's (a name, a number, a file, a path): the CLI prints it
as one line and exits 2. Anything else that escapes is a bug in lossfuzz: the CLI
prints one line and exits 3 (``LOSSFUZZ_DEBUG=1`` shows the traceback).
"""


class UsageError(ValueError):
    """Bad input from the user: a name, a number, a file, a path."""


def first_line(exc: BaseException, limit: int = 500) -> str:
    """``TypeName: the first line of its message`` (just the name when it has none).

    >>> first_line(ValueError("bad shape\\nmore detail"))
    'ValueError: bad shape'
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    name = type(exc).__name__
    return (f"{name}: {first}" if first else name)[:limit]
