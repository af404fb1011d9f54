"""The pure chart helpers: bar lengths, scaling and escaping."""

from __future__ import annotations

from daemon.charts import svg_columns, svg_hbars, text_bar, text_bars


def test_text_bar_scales_in_eighths() -> None:
    assert text_bar(10, 10, 4) == "████"
    assert text_bar(5, 10, 4) == "██"
    assert text_bar(1, 16, 4) == "▎"  # 1/16 of 4 cells = 2 eighths
    assert text_bar(0, 10, 4) == "" and text_bar(3, 0, 4) == ""
    assert text_bar(20, 10, 4) == "████"  # never past the width


def test_text_bars_align_labels_and_values() -> None:
    out = text_bars([("opus", 6.8), ("haiku", 0.01)], width=10, fmt=lambda v: f"${v:.2f}").splitlines()
    assert out[0] == "opus   ██████████  $6.80"
    assert out[1].startswith("haiku  ") and out[1].endswith("$0.01")


def test_svg_escapes_labels_and_survives_no_data() -> None:
    svg = svg_hbars([("<b>&x", 1.0)], title="T & <U>")
    assert "<b>" not in svg and "&lt;b&gt;&amp;x" in svg and "T &amp; &lt;U&gt;" in svg
    assert "no data" in svg_hbars([], title="empty")
    assert svg_columns([], title="empty").count("<rect") == 0
    assert svg_columns([("03-01", 0.0), ("03-02", 2.0)], title="t").count("<rect") == 2
