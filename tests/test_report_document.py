"""Report rendering: markdown and self-contained HTML; both message catalogues complete."""

import re

from mnistlab.messages import catalogue
from mnistlab.report.document import (
    Bullets,
    Document,
    Heading,
    Image,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)


def _doc(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    fig.savefig(tmp_path / "p.png")
    doc = Document("Title <x>", "es", origin="made by `mnistlab study x`")
    doc.add(Heading(1, "Sección"), Paragraph("a **bold** `code` & more <b>raw</b>"),
            Bullets(["one", "+0.10 *within noise*"]),
            Table(["a", "b|c"], [["1", "2"]], caption="cap"),
            Table(["trial", "settings"], [["3", "lr=0.01, hidden_sizes=64"]], align="ll"),
            Image("p.png", "a plot"), Image("missing.png", "gone"))
    return doc


def test_markdown(tmp_path):
    md = to_markdown(_doc(tmp_path))
    assert md.startswith("# Title <x>\n")
    assert "## Sección" in md
    assert "| a | b\\|c |" in md and "|:---|---:|" in md and "|:---|:---|" in md
    assert md.startswith("# Title <x>\n\nmade by `mnistlab study x`\n")
    assert "![a plot](p.png)\n\n*a plot*\n" in md  # a caption a reader sees, not alt alone


def test_html_is_self_contained_and_escaped(tmp_path):
    page = to_html(_doc(tmp_path), tmp_path)
    assert '<html lang="es">' in page
    assert "Title &lt;x&gt;" in page
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    assert "<em>within noise</em>" in page and "*" not in page.split("<body>")[1]
    assert "&lt;b&gt;raw&lt;/b&gt;" in page  # raw HTML in a text is shown, not run
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<p class="origin">made by <code>mnistlab study x</code></p>' in page
    assert 'style="text-align:left">lr=0.01, hidden_sizes=64</td>' in page
    assert '<td class=\'num\' style="text-align:right">2</td>' in page
    assert page.count("data:image/png;base64,") == 1  # the missing image is not embedded
    assert "src=\"p.png\"" not in page
    # captions shown under the figures (the alt text alone is never seen), a missing one said
    assert '<figcaption>a plot</figcaption></figure>' in page
    assert "<figcaption>gone</figcaption><p><em>(falta missing.png)</em></p>" in page  # es


SAME_IN_BOTH = {"base_mark", "plot.original", "setting.dropout"}  # Spanish words too


def test_spanish_catalogue_is_spanish():
    # every Spanish message differs from the English one, except symbols, n and names
    same = [key for key, entry in catalogue().items() if entry["en"] == entry["es"]
            and re.search(r"[a-z]{3,}", re.sub(r"{[^}]*}", "", entry["en"]))
            and key not in SAME_IN_BOTH]
    assert same == []


def test_table_columns_can_be_aligned(tmp_path):
    doc = Document("T")
    doc.add(Table(["n", "words", "value"], [["1", "a, b", "2.5"]], align=["r", "l", "r"]))
    assert "|---:|:---|---:|" in to_markdown(doc)
    page = to_html(doc, tmp_path)
    assert '<th style="text-align:left">words</th>' in page
    assert ('<tr><td class=\'num\' style="text-align:right">1</td><td style="text-align:left">'
            'a, b</td><td class=\'num\' style="text-align:right">2.5</td></tr>') in page
    # without align: the first column left, the rest right
    plain = Document("T")
    plain.add(Table(["n", "words"], [["1", "a"]]))
    assert ('<td style="text-align:left">1</td><td class=\'num\' style="text-align:right">a</td>'
            in to_html(plain, tmp_path))
    assert "|:---|---:|" in to_markdown(plain)
