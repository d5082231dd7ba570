"""The ``cis-eval`` command line.

:mod:`.main` builds the parser from the ordered list of command modules and holds the
error boundary (exit 2 for user errors, 1 for bugs); each command (``validate``,
``assign``, ``estimate``, ...) is one module with ``NAME``, ``HELP``, ``configure`` and
``run``; :mod:`.demo` holds the demo report's sections; :mod:`._common` the checked option
types and helpers they share. Importing the package imports no part of the library's
numerical stack.
"""

from .main import main

__all__ = ["main"]
