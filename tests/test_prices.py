"""Real price files: what is read, how gaps are filled, and an error that names
the file, row and column for everything that cannot be used."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cellverify import AS_ASKED, InvalidConfig
from cellverify.cli import main
from cellverify.data import batch_for, markets_for
from cellverify.prices import MAX_GAP, BadPriceFile, load_prices, sp500


def write(path, text):
    path.write_text(text)
    return path


def closes(rows, assets=("A", "B")):
    lines = ["date," + ",".join(assets)]
    lines += [f"2020-01-{d + 1:02d}," + ",".join(row) for d, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


def test_a_table_of_closes_gives_one_feature_per_asset(tmp_path):
    history = load_prices(write(tmp_path / "p.csv", closes([["1", "2"], ["1.1", "2.2"]] * 2)))
    assert (history.assets, history.periods, history.features) == (2, 4, 1)
    assert history.names == ("A", "B")
    assert str(history.dates[0]) == "2020-01-01"


def test_one_file_per_asset_gives_close_high_and_low(tmp_path):
    for name in ("X", "Y"):
        write(
            tmp_path / f"{name}.csv",
            "Date,Open,High,Low,Close\n2020-01-01,1,1.2,0.9,1.1\n2020-01-02,1.1,1.3,1.0,1.2\n",
        )
    history = load_prices(tmp_path)
    assert (history.assets, history.features) == (2, 3)
    np.testing.assert_allclose(history.high[:, 0], [1.2, 1.3])
    np.testing.assert_allclose(history.low[:, 1], [0.9, 1.0])


def test_a_short_gap_is_forward_filled(tmp_path):
    rows = [["1", "2"]] + [["", "2"]] * MAX_GAP + [["3", "2"]]
    history = load_prices(write(tmp_path / "p.csv", closes(rows)))
    np.testing.assert_array_equal(history.close[: MAX_GAP + 1, 0], 1.0)
    assert history.close[-1, 0] == 3.0


@pytest.mark.parametrize(
    ("rows", "where", "what"),
    [
        ([["1", "2"], ["0", "2"]], "row 3, column 'A'", "not a positive price"),
        ([["1", "2"], ["1", "-3"]], "row 3, column 'B'", "not a positive price"),
        ([["1", "2"], ["1", "abc"]], "row 3, column 'B'", "Received: 'abc'"),
        ([["", "2"], ["1", "2"]], "row 2, column 'A'", "no price to carry forward"),
        ([["1", "2"]] + [["", "2"]] * (MAX_GAP + 1), "row 3, column 'A'", "a gap of more than"),
    ],
)
def test_a_bad_price_is_named_by_file_row_and_column(tmp_path, rows, where, what):
    path = write(tmp_path / "p.csv", closes(rows))
    with pytest.raises(BadPriceFile) as info:
        load_prices(path)
    message = str(info.value)
    assert message.startswith(f"{path}, {where}:"), message
    assert what in message
    assert isinstance(info.value, InvalidConfig)


def test_dates_must_increase(tmp_path):
    path = write(tmp_path / "p.csv", "date,A\n2020-01-02,1\n2020-01-01,1\n2020-01-03,1\n")
    with pytest.raises(BadPriceFile, match=r"row 3, column 'date': dates must increase"):
        load_prices(path)


def test_mismatched_dates_across_asset_files_are_refused(tmp_path):
    write(tmp_path / "X.csv", "date,close,high,low\n2020-01-01,1,1,1\n2020-01-02,1,1,1\n")
    write(tmp_path / "Y.csv", "date,close,high,low\n2020-01-01,1,1,1\n2020-01-03,1,1,1\n")
    with pytest.raises(BadPriceFile, match=r"Y\.csv, row 3, column 'date': the dates differ"):
        load_prices(tmp_path)


def test_a_missing_column_in_an_asset_file_is_named(tmp_path):
    write(tmp_path / "X.csv", "date,close,high\n2020-01-01,1,1\n")
    with pytest.raises(BadPriceFile, match=r"X\.csv, row 1, column 'low': a column is missing"):
        load_prices(tmp_path)


def test_too_few_rows_for_the_window_is_refused(tmp_path):
    path = write(tmp_path / "p.csv", closes([["1", "2"], ["1.1", "2.1"]] * 10))
    cell = AS_ASKED.cell.replace(assets=2, window=20, features=1)
    train = AS_ASKED.train.replace(data=str(path))
    with pytest.raises(InvalidConfig, match=r"window \+ steps \+ 1 = 25 rows"):
        markets_for(cell, train)


def test_the_command_line_names_a_bad_file_and_exits_2(tmp_path, capsys):
    path = write(tmp_path / "p.csv", closes([["1", "2"], ["1", "x"]]))
    assert main(["diagnose", "--data", str(path), "--seeds", "1"]) == 2
    assert f"{path}, row 3, column 'B'" in capsys.readouterr().err


HAS_SKFOLIO = importlib.util.find_spec("skfolio") is not None


@pytest.mark.skipif(not HAS_SKFOLIO, reason="the data extra (skfolio) is not installed")
def test_sp500_splits_training_and_evaluation_by_date():
    history = sp500()
    assert (history.assets, history.features) == (20, 1)
    assert str(history.dates[0]).startswith("1990") and str(history.dates[-1]).startswith("2022")
    cell = AS_ASKED.cell.replace(features=1)
    train_market, eval_market = markets_for(cell, AS_ASKED.train.replace(data="sp500"))
    split = history.split()
    np.testing.assert_array_equal(train_market.close, history.close[:split, :15])
    np.testing.assert_array_equal(eval_market.close, history.close[split:, :15])
    batch = batch_for(cell, AS_ASKED.train.replace(data="sp500", batch_size=4))
    np.testing.assert_allclose(batch.inputs[..., -1, 0], 1.0)  # divided by the latest close
