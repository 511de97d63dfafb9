"""A tiny document model rendered twice: Markdown beside its PNGs, and one self-contained HTML
file with the images embedded (base64), so a report can be mailed as a single file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..messages import t


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str  # inline Markdown: **bold**, *emphasis*, `code`


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    # one letter per column, l or r, as a string or a list (default: the first left, the
    # rest right: a label, then numbers)
    align: str | list[str] = ""


@dataclass
class Image:
    path: str  # relative to the document's folder
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


@dataclass
class Document:
    title: str
    lang: str = "en"
    origin: str = ""  # one line under the title: what made the report and how to remake it
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def origin_line(lang: str, command: str) -> str:
    """'Made with mnistlab 0.1.0. To remake it: `mnistlab study ...`' in `lang`."""
    from .. import __version__

    line = t(lang, "origin", version=__version__)
    return line + (" " + t(lang, "origin.command", command=command) if command else "")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""] + ([doc.origin, ""] if doc.origin else [])
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += ["#" * (b.level + 1) + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{b.caption}*", ""]
            out.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            out.append("|" + "|".join(":---" if a == "left" else "---:"
                                      for a in _alignments(b)) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Image):  # the caption in words too: alt text is seldom shown
            caption = b.alt.replace("*", "\\*")
            out += [f"![{b.alt}]({b.path})", ""] + ([f"*{caption}*", ""] if caption else [])
    return "\n".join(out)


@cache
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: a value that looks like a tag is shown, never run
    return MarkdownIt("commonmark", {"html": False})


def _inline(text: str) -> str:
    """Inline Markdown as HTML, by a real CommonMark renderer (emphasis, code, escapes)."""
    return _renderer().renderInline(text)


def _alignments(table: Table) -> list[str]:
    letters = table.align or "l" + "r" * (len(table.headers) - 1)
    return ["left" if letter == "l" else "right" for letter in letters]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem}
th{background:#f3f3f3}
.origin{color:#555;font-size:.9rem}
.scroll{overflow-x:auto}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
caption{caption-side:top;font-style:italic;text-align:left;padding-bottom:.3rem}
figure{margin:1rem 0}
figcaption{font-style:italic;font-size:.92rem;color:#444}
code{background:#f5f5f5;padding:0 .2rem}
p,li,figcaption,caption{overflow-wrap:anywhere}
td.num{white-space:nowrap}
td.prose{min-width:16rem}
h2,h3{break-after:avoid}
figure,tr{break-inside:avoid}
"""
# a long unbroken setting (an augment text, a folder's path) pushed a phone's page sideways;
# figures stay on one line, and a column of long text keeps room to be read where the table
# scrolls (a search's settings stood 20 lines tall in a strip); a heading stays with what
# follows it in print (hunt)
PROSE = 40  # a left column holding a cell this long is text to be read, not a label


def to_html(doc: Document, base_dir: Path) -> str:
    parts = [f'<!DOCTYPE html><html lang="{doc.lang}"><head><meta charset="utf-8">'
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_inline(doc.title)}</h1>"]  # as the page's other headings are
    if doc.origin:
        parts.append(f'<p class="origin">{_inline(doc.origin)}</p>')
    parts += [_block_html(b, base_dir, doc.lang) for b in doc.blocks]
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _block_html(b: Block, base_dir: Path, lang: str = "en") -> str:
    if isinstance(b, Heading):
        level = min(6, b.level + 1)
        return f"<h{level}>{_inline(b.text)}</h{level}>"
    if isinstance(b, Paragraph):
        return f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table_html(b)
    path = base_dir / b.path  # the caption shown, not only the alt text a reader never sees
    caption = f"<figcaption>{_inline(b.alt)}</figcaption>"
    if not path.is_file():  # said, where the figure vanished without a word
        missing = t(lang, "figure_missing", path=html.escape(b.path))
        return f"<figure>{caption}<p><em>({missing})</em></p></figure>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
            f"{caption}</figure>")


def _table_html(b: Table) -> str:
    aligns = _alignments(b)
    caption = f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""
    head = "".join(f'<th style="text-align:{a}">{_inline(h)}</th>'
                   for h, a in zip(b.headers, aligns))
    kinds = ["num" if a == "right" else
             "prose" if any(len(row[i]) > PROSE for row in b.rows if i < len(row)) else ""
             for i, a in enumerate(aligns)]
    body = "".join("<tr>" + "".join(
        f'<td{f" class={k!r}" if k else ""} style="text-align:{a}">{_inline(c)}</td>'
        for c, a, k in zip(row, aligns, kinds)) + "</tr>" for row in b.rows)
    # wide tables scroll sideways on a phone instead of squeezing the page
    return (f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")
