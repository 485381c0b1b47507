"""Escaping helpers for untrusted text (captions, comments, handles) shown in reports.

Captions, comments and handles come from the public: every HTML or Markdown output
built from them must escape them. pandas ``Styler`` does not escape cell text by
default, and Markdown passes raw HTML through, so the report uses these helpers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

__all__ = ["NO_MATH", "NotebookRepr", "SafeTable", "escape_markdown", "escape_text", "frame_to_html", "is_text_column",
           "item_list", "markdown", "paragraph", "safe_table"]

#: CSS classes that stop MathJax (in JupyterLab and in nbconvert's HTML) from reading ``$...$`` in
#: currency amounts as mathematics.
NO_MATH = "tex2jax_ignore mathjax_ignore"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


def escape_text(value: Any) -> str:
    """Escape ``value`` for HTML text or attribute context (``&``, ``<``, ``>``, quotes)."""
    return html.escape("" if value is None else str(value), quote=True)


def escape_markdown(value: Any) -> str:
    """Escape ``value`` for Markdown: HTML-escape it and backslash-escape Markdown punctuation.

    The result renders as the literal text: no tags, links, images or emphasis can be injected.
    """
    text = escape_text(value).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown(template: str, /, **values: Any):
    """Build an ``IPython.display.Markdown`` from a trusted template and untrusted values.

    Parameters
    ----------
    template : str
        Trusted Markdown with ``str.format`` fields, e.g. ``"**{handle}** posted {n} videos"``.
    **values
        Substituted after :func:`escape_markdown` (numbers are formatted first by the caller).

    Examples
    --------
    >>> markdown("Top creator: {h}", h="<script>x</script>").data
    'Top creator: &lt;script&gt;x&lt;/script&gt;'
    """
    from IPython.display import Markdown

    return Markdown(template.format(**{k: escape_markdown(v) for k, v in values.items()}))


def paragraph(text: Any, *, lead: str | None = None):
    """An ``IPython.display.HTML`` paragraph showing ``text`` literally (escaped, no Markdown, no MathJax).

    Parameters
    ----------
    text : str
        Untrusted or mixed text (readings quote handles and captions).
    lead : str, optional
        Trusted bold prefix such as ``"Note:"`` (escaped as well).
    """
    from IPython.display import HTML

    head = f"<strong>{escape_text(lead)}</strong> " if lead else ""
    return HTML(f'<p class="{NO_MATH}">{head}{escape_text(text)}</p>')


def frame_to_html(df: pd.DataFrame, *, formatters: Mapping[str, Callable[[Any], str]] | None = None,
                  index: bool = True, classes: str = "dataframe report-table") -> str:
    """Render ``df`` as an HTML table with every cell, header and index label escaped.

    Parameters
    ----------
    df : DataFrame
        The table; any text in it is treated as untrusted.
    formatters : mapping, optional
        Column -> function returning the display string (applied before escaping).
    index : bool
        Whether to show the index.
    classes : str
        CSS classes of the table element.
    """
    shown = df.copy()
    for col, fmt in (formatters or {}).items():
        if col in shown.columns:
            shown[col] = shown[col].map(fmt).astype(object)
    body = shown.to_html(escape=True, index=index, classes=f"{classes} {NO_MATH}", na_rep="–", border=0)
    if isinstance(shown.columns, pd.MultiIndex) or (index and shown.index.nlevels > 1):
        return body
    return _left_align(body, [is_text_column(shown[c]) for c in shown.columns],
                       offset=shown.index.nlevels if index else 0)


#: A display string that reads as a number: optional bracket, comparison, sign and currency, then a digit.
_NUMBER_LIKE = re.compile(r"^[\s\[(]*[<>\u2264\u2265]?\s?[-+\u2212\u2013]?[$\u20ac\u00a3]?\s?\d")
#: Placeholders of missing values; they do not decide a column's alignment.
_PLACEHOLDERS = {"", "–", "-", "n/a", "nan", "None", "NaT"}
_LEFT = ' style="text-align: left;"'


def is_text_column(values: pd.Series) -> bool:
    """Whether a table column holds words (left-aligned) rather than numbers, dates or amounts (right).

    Numeric, boolean and date columns are never text; for others, a column is text unless at least
    three quarters of its non-missing display strings start like a number (``"$43.7k"``, ``"[2.6%, 4.4%]"``,
    ``"-4.4 pts"``, ``"< 0.001"``), so a column of mixed labels and amounts reads as text.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) \
            or pd.api.types.is_datetime64_any_dtype(values):
        return False
    shown = [str(v).strip() for v in values if not (v is None or (isinstance(v, float) and v != v))]
    shown = [v for v in shown if v not in _PLACEHOLDERS]
    if not shown:
        return False
    return sum(bool(_NUMBER_LIKE.match(v)) for v in shown) < 0.75 * len(shown)


def _left_align(body: str, text: list[bool], *, offset: int) -> str:
    """Left-align the header and body cells of the text columns of a ``DataFrame.to_html`` table.

    ``offset`` index cells open each row; rows whose cell count does not match (a second header row
    of index names) are left as they are.
    """
    if not any(text):
        return body
    width = offset + len(text)

    def row(m: re.Match) -> str:
        cells = list(re.finditer(r"<(td|th)(?=[\s>])([^>]*)>", m.group(0)))
        if len(cells) != width:
            return m.group(0)
        out, last = [], 0
        for k, c in enumerate(cells):
            out.append(m.group(0)[last:c.start()])
            j = k - offset
            left = j >= 0 and text[j] and "style=" not in c.group(2)
            out.append(f"<{c.group(1)}{c.group(2)}{_LEFT}>" if left else c.group(0))
            last = c.end()
        out.append(m.group(0)[last:])
        return "".join(out)

    return re.sub(r"<tr[\s>].*?</tr>", row, body, flags=re.S)


class SafeTable:
    """A DataFrame shown in a notebook with every piece of text escaped.

    Its HTML representation is :func:`frame_to_html`; its plain-text representation is the
    formatted frame (stable, so notebook output checks can compare it).
    """

    def __init__(self, df: pd.DataFrame, *, formatters: Mapping[str, Callable[[Any], str]] | None = None,
                 index: bool = True, caption: str | None = None) -> None:
        self.frame = df
        self.formatters = dict(formatters or {})
        self.index = index
        self.caption = caption

    def formatted(self) -> pd.DataFrame:
        """The table with display strings (formatters applied), as shown."""
        shown = self.frame.copy()
        for col, fmt in self.formatters.items():
            if col in shown.columns:
                shown[col] = shown[col].map(fmt).astype(object)
        return shown

    def _repr_html_(self) -> str:
        body = frame_to_html(self.frame, formatters=self.formatters, index=self.index)
        if self.caption:
            body = f"<p class='table-caption'><strong>{escape_text(self.caption)}</strong></p>{body}"
        return f'<div class="{NO_MATH}">{body}</div>'

    def __repr__(self) -> str:
        text = self.formatted().to_string(index=self.index)
        return f"{self.caption}\n{text}" if self.caption else text


def item_list(items: Any, *, ordered: bool = False):
    """An ``IPython.display.HTML`` list of ``items`` shown literally (each escaped, no Markdown, no MathJax)."""
    from IPython.display import HTML

    tag = "ol" if ordered else "ul"
    body = "".join(f"<li>{escape_text(item)}</li>" for item in items)
    return HTML(f'<{tag} class="{NO_MATH}">{body}</{tag}>')


def safe_table(df: pd.DataFrame, *, formatters: Mapping[str, Callable[[Any], str]] | None = None,
               index: bool = True, caption: str | None = None) -> SafeTable:
    """Wrap ``df`` for display with escaped HTML (see :class:`SafeTable`)."""
    return SafeTable(df, formatters=formatters, index=index, caption=caption)


def _number(value: Any) -> str:
    """A float as a notebook table shows it: thousands separated, a few significant digits."""
    if value is None or pd.isna(value):
        return "–"
    v = float(value)
    if v != 0 and abs(v) < 1:
        return f"{v:.3g}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}".rstrip("0").rstrip(".")


class NotebookRepr:
    """Mixin: a result shown in a notebook as its reading, its tables and its warnings, all escaped.

    The reading is ``reading()`` (a sentence or a list of them; override :meth:`_repr_reading` for
    another), the tables :meth:`_repr_tables` (default: ``summary()``), the warnings the ``warnings``
    attribute when there is one. Floats are shown with thousands separators and a few significant digits;
    ``summary()`` and ``to_dict()`` keep the full values.
    """

    def _repr_reading(self) -> list[str]:
        reading = getattr(self, "reading", None)
        if not callable(reading):
            return []
        text = reading()
        return [text] if isinstance(text, str) else [str(t) for t in text]

    def _repr_tables(self) -> list[tuple[str, pd.DataFrame]]:
        return [("Summary", self.summary())] if callable(getattr(self, "summary", None)) else []

    def _repr_html_(self) -> str:
        parts = [f"<p><strong>{escape_text(type(self).__name__)}</strong></p>"]
        parts += [f"<p>{escape_text(t)}</p>" for t in self._repr_reading()]
        for caption, frame in self._repr_tables():
            floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
            parts.append(f"<p class='table-caption'><strong>{escape_text(caption)}</strong></p>"
                         + frame_to_html(frame, formatters={c: _number for c in floats}, index=False))
        warnings = [str(w) for w in (getattr(self, "warnings", None) or ())]
        if warnings:
            parts.append("<p><strong>Warnings</strong></p><ul>"
                         + "".join(f"<li>{escape_text(w)}</li>" for w in warnings) + "</ul>")
        return f'<div class="{NO_MATH}">' + "".join(parts) + "</div>"
