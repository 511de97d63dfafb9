"""A tiny document model rendered twice: Markdown beside its PNGs, and one self-contained HTML
file with the images embedded (base64), so a report can be mailed as a single file.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str  # **bold** and `code` are understood


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    align: list[str] | None = None  # per column 'l' or 'r'; None: the first left, others right


_ALIGN = {"l": ("left", ":---"), "r": ("right", "---:")}  # Table.align: (CSS, Markdown rule)


@dataclass
class Image:
    path: str  # relative to the document's folder
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


@dataclass
class Document:
    title: str
    lang: str = "en"
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
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
            out.append("|" + "|".join(_ALIGN[a][1] for a in b.align) + "|"
                       if b.align else "|" + "|".join("---" for _ in b.headers) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Image):
            out += [f"![{b.alt}]({b.path})", ""]
    return "\n".join(out)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
caption{caption-side:top;font-style:italic;text-align:left;padding-bottom:.3rem}
code{background:#f5f5f5;padding:0 .2rem}
"""


def to_html(doc: Document, base_dir: Path) -> str:
    parts = [f'<!DOCTYPE html><html lang="{doc.lang}"><head><meta charset="utf-8">'
             f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            level = min(6, b.level + 1)
            parts.append(f"<h{level}>{_inline(b.text)}</h{level}>")
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            caption = f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""
            css = ([f' style="text-align:{_ALIGN[a][0]}"' for a in b.align] if b.align
                   else [""] * len(b.headers))
            head = "".join(f"<th{s}>{_inline(h)}</th>" for s, h in zip(css, b.headers))
            body = "".join("<tr>" + "".join(f"<td{s}>{_inline(c)}</td>" for s, c in zip(css, row))
                           + "</tr>" for row in b.rows)
            parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            path = base_dir / b.path
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(f'<img alt="{html.escape(b.alt)}" '
                             f'src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts)
