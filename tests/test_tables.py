"""minidiff.tables: results tables as aligned text and as styled HTML that is byte-stable (checked
notebook cells compare it), and the summary table's colours that never leak an uncompared verdict."""
import re

import pytest

import minidiff as md
from minidiff.tables import html_table


def test_text_aligns_columns_and_html_escapes_cells():
    table = md.Table(["method", "PSNR (dB)"], title="3 images", footer="mean ± s.e.")
    table.add("DDIM <w=1>", "28.1 ± 0.3")
    table.add("null-text", 31.25)
    text = repr(table).splitlines()
    assert text[0] == "3 images" and text[-1] == "mean ± s.e."
    assert len({len(line) for line in text[1:-1]}) == 1, "every row as wide as the header"
    assert text[3].endswith("31.25") and text[2].startswith("DDIM <w=1>"), "figures right-aligned, words left"
    html = table._repr_html_()
    assert 'class="l">DDIM' in html and "<td>31.25</td>" in html
    assert "DDIM &lt;w=1&gt;" in html and "<caption>3 images</caption>" in html and "<tfoot>" in html
    assert html == table._repr_html_() and not re.search(r'id="', html), "no random element ids"


def test_a_row_of_the_wrong_width_is_refused_by_name():
    table = md.Table(["a", "b"])
    with pytest.raises(ValueError, match=r"expected 2 cells \(a, b\), got 3"):
        table.add(1, 2, 3)
    with pytest.raises(ValueError, match="columns"):
        md.Table("ab")


def test_claims_colour_their_verdicts_but_not_the_uncompared_ones():
    claims = md.Claims("lesson")
    claims.add("A beats B", True, "+1.0 ± 0.2 dB")
    claims.add("C beats D", False, "−0.1 ± 0.3 dB")
    claims.add("a tie at rounding", True, "0.50", stable=False)
    html = claims._repr_html_()
    assert re.search(r'<td class="holds[ "][^>]*>holds</td>', html) and re.search(r'<td class="fails[ "][^>]*>does not hold</td>', html)
    sanitized = re.sub(r"⟨[^⟩]*⟩", "⟨…⟩", html)  # tests/nbval_sanitize.cfg's rule
    assert "0.50" not in sanitized and "+1.0" not in sanitized
    assert sanitized.count('class="unstable') == 2, "the uncompared verdict's cells look alike whatever it is"
    flipped = md.Claims("lesson", [r if r[0] != "a tie at rounding" else (r[0], False, r[2], False) for r in claims.rows])
    assert re.sub(r"⟨[^⟩]*⟩", "⟨…⟩", flipped._repr_html_()) == sanitized
    assert repr(claims) == claims.table()


def test_show_prints_the_text_outside_a_notebook(capsys):
    md.Table(["x"], title="t").show()
    assert capsys.readouterr().out == "t\nx\n"
    assert "<table" in html_table(["x"], [["1"]])
