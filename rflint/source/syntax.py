"""One parse of a file's text, shared by everything that only reads its tree.

Finding a file's models, naming their definition sites and checking for keras imports
each need the file's syntax tree; the worker parsed the same text three or four times
(a third of a second for torchvision's models). The tree must not be modified.
"""

from __future__ import annotations

import ast
import functools


@functools.lru_cache(maxsize=8)
def parsed(source: str) -> ast.Module:
    """The tree of ``source`` (raises SyntaxError or ValueError as ``ast.parse`` does)."""
    return ast.parse(source)
