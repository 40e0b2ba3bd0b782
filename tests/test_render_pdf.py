"""The PDF's parts printed with the lean browser stylesheet (render_pdf.lean_html): the same pages
and words as WeasyPrint's own ``HTML`` gives, so dropping the pseudo-element rules only saves time."""

from __future__ import annotations

import io

from pypdf import PdfReader
from weasyprint import HTML

from collector.reports.render_pdf import lean_html

PAGE = """<!doctype html><html lang="vi"><head><meta charset="utf-8"><style>
@page{size:A4 landscape;margin:10mm} td.n{text-align:right}</style></head><body>
<h2>Theo xã</h2><table><tr><th>Hạng</th><th>Xã</th><th>Sẵn sàng %</th></tr>
ROWS</table><p>Điểm = 40 × đường truyền + 30 × tốc độ</p></body></html>"""


def pages_text(document: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(document)).pages]


def test_lean_stylesheet_prints_the_same_pages_and_words_as_weasyprints_own() -> None:
    rows = "".join(f'<tr><td class="n">{i}</td><td>Xã Thượng Lâm {i}</td><td class="n">9{i % 10},5</td></tr>'
                   for i in range(1, 120))  # fmt: skip
    page = PAGE.replace("ROWS", rows)
    lean = lean_html()
    assert lean is not HTML  # this WeasyPrint has the internals the lean stylesheet needs
    ours = pages_text(lean(string=page).write_pdf())
    theirs = pages_text(HTML(string=page).write_pdf())
    assert len(ours) == len(theirs) > 1
    assert ours == theirs
    assert "Xã Thượng Lâm 119" in ours[-1]
