"""Making text safe for the place it is written: Markdown, consoles, LaTeX and spreadsheets.

School, coordinator and column names come from user files, so every output that another
program interprets escapes them here, in one place:

- Markdown and console text: raw HTML (``<script>``) and character references are
  neutralised, and control characters (terminal escape sequences, line breaks inside a
  cell) become spaces.
- LaTeX: the ten special characters are escaped.
- CSV and Excel: a text cell that a spreadsheet would run as a formula (one starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, OWASP's rule) is written with a
  leading single quote, so it is shown as text. Numbers, and text that is just a
  formatted number such as ``-0.125`` or ``+1.2**``, are left as they are. Carriage
  returns inside text become line feeds, which CSV writers quote, and control characters
  that an Excel file cannot hold become the replacement character U+FFFD.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = [
    "FORMULA_TRIGGERS",
    "escape_latex",
    "escape_markup",
    "neutralise_formula",
    "neutralise_formulas",
    "single_line",
]

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection;
the full-width forms too, which some locales of Excel also accept)."""

# A formatted number: sign, digits with thousands separators, decimals, exponent, percent
# sign, significance stars and a unit word ("+4 pp"); or a dash standing for "none". A
# spreadsheet reads such text as a number or as text, never as a formula that calls
# anything (no parenthesis, pipe or cell reference), so it stays unchanged and tables
# stay readable.
_NUMBER = re.compile(
    r"[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?\**(?: [A-Za-z]{1,12})?|-+"
)
# Raw HTML in Markdown starts with '<' and a letter, '/', '!' or '?' (CommonMark 6.6);
# a character reference starts with '&' and a letter or '#'. A '<' before a space or a
# digit ("p < 0.01") is plain text and is kept as typed.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_REF_START = re.compile(r"&(?=[A-Za-z#])")
_UNSAFE_CONTROL = re.compile(r"[\r\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX))


def escape_markup(text: str) -> str:
    r"""Neutralise HTML and control characters in text bound for Markdown or a console.

    Parameters
    ----------
    text : str
        Text that may hold a user's names.

    Returns
    -------
    str
        The text with ``<`` before a tag and ``&`` before a character reference written
        as ``&lt;`` and ``&amp;`` (a Markdown viewer shows them as typed, and no browser
        runs them), and control characters replaced by spaces.

    Examples
    --------
    >>> escape_markup("<script>alert(1)</script> p < 0.01")
    '&lt;script>alert(1)&lt;/script> p < 0.01'
    >>> escape_markup("A\nB\x1b[2J")
    'A B [2J'
    """
    text = _CONTROL.sub(" ", text)
    return _TAG_START.sub("&lt;", _REF_START.sub("&amp;", text))


def single_line(text: str) -> str:
    r"""Replace control characters (line breaks included) by spaces.

    Examples
    --------
    >>> single_line("a\nb")
    'a b'
    """
    return _CONTROL.sub(" ", text)


def escape_latex(text: str) -> str:
    r"""Escape LaTeX's special characters (and put line breaks on one line).

    Examples
    --------
    >>> print(escape_latex(r"50% of A&B_c {x} ~ \n"))
    50\% of A\&B\_c \{x\} \textasciitilde{} \textbackslash{}n
    """
    # One pass, so the braces written for a backslash are not escaped again.
    return _LATEX_RE.sub(lambda m: _LATEX[m.group(0)], _CONTROL.sub(" ", text))


def neutralise_formula(value: object) -> object:
    """Return a cell value that a spreadsheet will not run as a formula.

    Parameters
    ----------
    value : object
        A cell. Only text is changed; numbers (negative ones included), dates and
        missing values are returned as they are.

    Returns
    -------
    object
        Text starting with one of :data:`FORMULA_TRIGGERS` gets a leading ``'`` unless
        it is a formatted number; in any text, carriage returns become line feeds and
        the control characters an Excel file cannot hold become U+FFFD. Anything else is
        returned unchanged.

    Examples
    --------
    >>> print(neutralise_formula('=HYPERLINK("x")'))
    '=HYPERLINK("x")
    >>> neutralise_formula("-0.125**"), neutralise_formula(-2)
    ('-0.125**', -2)
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_TRIGGERS) and not _NUMBER.fullmatch(value):
        value = "'" + value
    # A CSV writer quotes a field holding a line feed but not one holding a bare carriage
    # return, which a spreadsheet reads as the end of a row: the text after it would start
    # a row of its own (and could be a formula). Line feeds keep the field whole. Other
    # control characters cannot be stored in an Excel file at all (XML 1.0 forbids them).
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_CONTROL.sub("\ufffd", value)


def _neutralise_series(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
            new = [neutralise_formula(c) for c in cats]
            if new == list(cats):
                return s
            if len(set(new)) == len(new):
                return s.cat.rename_categories(new)
            s = s.astype(object)  # two categories would become one: neutralise the cells
        else:
            return s
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        return s
    # Test the first character vectorised and touch only the few flagged cells, so writing
    # a million-row roster costs one pass over the column.
    try:
        first = s.str[:1]
    except AttributeError:  # an object column holding no text at all
        return s
    flagged = first.isin(FORMULA_TRIGGERS).to_numpy(dtype=bool, na_value=False)
    breaks = s.str.contains(_UNSAFE_CONTROL.pattern).to_numpy(dtype=bool, na_value=False)
    if not (flagged.any() or breaks.any()):
        return s
    out = s.copy()
    rows = (flagged | breaks).nonzero()[0]
    out.iloc[rows] = [neutralise_formula(v) for v in out.iloc[rows]]
    return out


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` that is safe to open in a spreadsheet.

    Every text cell and column name goes through :func:`neutralise_formula`. Numeric
    columns are not touched, so negative numbers stay numbers.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table about to be written as CSV or Excel.

    Returns
    -------
    pandas.DataFrame
        A new frame (the input is not modified).

    Examples
    --------
    >>> import pandas as pd
    >>> neutralise_formulas(pd.DataFrame({"a": ["@SUM(A1)", "ok"], "b": [-1, 2]})).to_dict("list")
    {'a': ["'@SUM(A1)", 'ok'], 'b': [-1, 2]}
    """
    out = frame.copy()
    for j in range(out.shape[1]):
        col = out.iloc[:, j]
        new = _neutralise_series(col)
        if new is not col:
            out.isetitem(j, new.array)
    names = [neutralise_formula(c) for c in out.columns]
    if names != list(out.columns):
        out.columns = pd.Index(names, name=out.columns.name)
    return out
