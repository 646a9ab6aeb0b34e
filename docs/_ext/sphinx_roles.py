"""Griffe extension for the API reference: Sphinx roles in docstrings become inline code.

pyqueue's docstrings name other objects the way Sphinx does (``:class:`Queue```,
``:meth:`~pyqueue.Queue.add```). mkdocstrings renders Markdown, where those roles would
show as raw text, so each becomes inline code of the name a reader would write
(``~`` keeps only the last component, as in Sphinx).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def plain_roles(text: str) -> str:
    """``:class:`~a.B``` -> ```B```; ``:meth:`a.b``` -> ```a.b```."""
    return _ROLE.sub(_replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrites each docstring once, as griffe loads its object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
