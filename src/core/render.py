"""Jinja2 rendering of the files in ``templates/``.

Jinja2 is imported on first use: hooks that render nothing never pay for it.
"""

from __future__ import annotations

import functools
import pathlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

# src/core/render.py -> the charm root, wherever the charm is unpacked.
TEMPLATES_DIR = pathlib.Path(__file__).resolve().parents[2] / "templates"

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}


def properties_value(value: Any) -> str:
    r"""Escape a value for a Java ``.properties`` file, which Trino reads.

    Booleans are written the way Trino spells them. Backslashes and line breaks
    are escaped (a raw newline would start a new property), leading blanks are
    kept, and anything outside printable ASCII becomes a ``\uXXXX`` escape,
    which Java reads the same whatever the file encoding.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    body = text.lstrip(" ")
    out = ["\\ "] * (len(text) - len(body))  # the parser would drop leading blanks
    for char in body:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            encoded = char.encode("utf-16-be")
            out.extend(
                f"\\u{int.from_bytes(encoded[i : i + 2], 'big'):04x}"
                for i in range(0, len(encoded), 2)
            )
    return "".join(out)


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415  (lazy: see module docstring)

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701  (these are .properties files, not HTML)
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["prop"] = properties_value
    return environment


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>.j2``; an undefined name raises."""
    return _environment().get_template(f"{template}.j2").render(**context)
