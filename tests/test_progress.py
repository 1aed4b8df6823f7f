"""The CLI's progress: a live bar on a terminal that ends at the total, and
a line per tenth (and the last) in a log."""

from __future__ import annotations

import io

from cellverify.cli.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_live_bar_that_stops_at_the_total():
    out = _Terminal()
    bar = Progress("diagnose", stream=out)
    for done in range(1, 4):
        bar(done, 3, note=f"run {done}")
    text = out.getvalue()
    assert "diagnose" in text and "3/3" in text and "runs" in text
    assert "\x1b[" in text  # drawn in place with the terminal's escapes
    bar(3, 3)  # told again that it is done (check does, at its end): nothing new
    bar.close()  # a second close (as at exit) is harmless
    assert out.getvalue() == text


def test_a_log_gets_a_line_per_tenth_and_the_last_with_what_is_left():
    out = io.StringIO()
    bar = Progress("sweep", stream=out)
    for done in range(1, 101):
        bar(done, 100)
    bar(100, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 1, 10, 20, ..., 100
    assert lines[0].startswith("sweep: 1/100 runs, ") and "left" in lines[0]
    assert lines[-1].startswith("sweep: 100/100 runs, ") and "left" not in lines[-1]
    assert "\x1b[" not in out.getvalue()


def test_an_empty_run_still_says_so_once():
    out = io.StringIO()
    bar = Progress("sweep", stream=out)
    bar(0, 0)
    bar(0, 0)
    assert out.getvalue().splitlines() == ["sweep: 0/0 runs, 0s"]
