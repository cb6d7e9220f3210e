"""Text that came from data (impl ids, inputs, exception messages), made safe for each
output: a terminal, Markdown, and XML. (HTML is Jinja2's autoescape.)

    >>> terminal("evil\\x1b[2Jname")
    'evil\\\\x1b[2Jname'
    >>> md_code("a`b|c")
    '`` a`b\\\\|c ``'
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def terminal(text: str) -> str:
    """Control characters (escape sequences, carriage returns) shown as \\x.. escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def md_text(text: str) -> str:
    """Plain text in a Markdown table cell: HTML escaped, pipes and newlines defused."""
    text = html.escape(terminal(text).replace("\n", " "), quote=False)
    return text.replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")


def md_code(text: str, limit: int = 160) -> str:
    """Text shown literally in a Markdown code span, inside a table cell: a fence longer
    than any run of backticks in it, pipes escaped (GFM splits cells before spans)."""
    text = terminal(text).replace("\n", " ")
    if len(text) > limit:
        text = text[:limit] + "…"
    if not text:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""  # CommonMark strips one space each side
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def xml_text(text: str) -> str:
    """Characters XML 1.0 cannot hold (most control characters) as \\x.. escapes."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
