from __future__ import annotations

import json

import pytest

from cellverify import CellConfig, InvalidConfig, TrainConfig
from cellverify.cli import main
from cellverify.experiments.checkpoint import Checkpoint, is_checkpoint
from cellverify.experiments.sweep import aggregate, parse_grid, parse_shard, sweep_tasks
from cellverify.render.report import render_sweep


def test_grid_values_take_the_fields_types():
    grid = parse_grid(
        [
            "optimizer=adam,sgd",
            "learning_rate=1e-3,1",
            "kernels=5-20-1,2-20-1",
            "cash_bias=true,false",
            "batch-size=4",
        ]
    )
    assert grid == {
        "optimizer": ["adam", "sgd"],
        "learning_rate": [1e-3, 1.0],
        "kernels": [(5, 20, 1), (2, 20, 1)],
        "cash_bias": [True, False],
        "batch_size": [4],
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("optimizer", "FIELD=V1,V2"),
        ("seed=1,2", "a field among"),
        ("colour=red", "a field among"),
        ("batch_size=four", "int values for batch_size"),
    ],
)
def test_bad_grid_axes_are_explained(spec, message):
    with pytest.raises(InvalidConfig, match=message):
        parse_grid([spec])


def test_a_field_may_be_swept_once():
    with pytest.raises(InvalidConfig, match="each field once"):
        parse_grid(["optimizer=adam", "optimizer=sgd"])


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shards_are_rejected(text):
    with pytest.raises(InvalidConfig, match="K/N with 1 <= K <= N"):
        parse_shard(text)


def test_shards_partition_the_runs_exactly():
    grid = parse_grid(["optimizer=adam,sgd,adagrad", "learning_rate=0.1,1"])
    whole = sweep_tasks(grid, CellConfig(), TrainConfig(), range(4))
    parts = [
        sweep_tasks(grid, CellConfig(), TrainConfig(), range(4), shard=(k, 3)) for k in (1, 2, 3)
    ]
    key = [(str(v), s) for v, s, _, _ in whole]
    assert sorted(k for part in parts for k in [(str(v), s) for v, s, _, _ in part]) == sorted(key)
    assert len(whole) == 3 * 2 * 4


def test_an_invalid_grid_point_is_caught_before_training():
    grid = parse_grid(["learning_rate=0.1,-1"])
    with pytest.raises(InvalidConfig, match=r"TrainConfig\.learning_rate"):
        sweep_tasks(grid, CellConfig(), TrainConfig(), range(1))


def test_aggregate_counts_rates_and_wilson_intervals():
    raw = {
        "grid": {"optimizer": ["adam", "sgd"]},
        "base": {},
        "seeds": 2,
        "runs": [
            {
                "values": {"optimizer": "adam"},
                "seed": 0,
                "died": True,
                "death_step": 2,
                "learned": False,
            },
            {
                "values": {"optimizer": "adam"},
                "seed": 1,
                "died": True,
                "death_step": 4,
                "learned": False,
            },
            {
                "values": {"optimizer": "sgd"},
                "seed": 0,
                "died": False,
                "death_step": None,
                "learned": True,
            },
        ],
    }
    points = {p["values"]["optimizer"]: p for p in aggregate([raw])["points"]}
    assert points["adam"]["died_rate"] == 1.0
    assert points["adam"]["median_death_step"] == 3.0
    assert points["sgd"]["learned"] == 1
    assert points["sgd"]["runs"] == 1
    assert points["sgd"]["learned_ci"][0] > 0.0


def test_merging_reports_of_different_grids_is_refused():
    a = {"grid": {"optimizer": ["adam"]}, "base": {}, "seeds": 1, "runs": []}
    b = {"grid": {"optimizer": ["sgd"]}, "base": {}, "seeds": 1, "runs": []}
    with pytest.raises(InvalidConfig, match="same grid"):
        aggregate([a, b])


@pytest.mark.usefixtures("fresh_keras")
def test_sharded_sweep_merges_to_the_unsharded_result(tmp_path, capsys, small_cli_args):
    grid = ["--grid", "output_activation=relu,linear", "--seeds", "2"]
    whole = tmp_path / "whole.json"
    assert main(["sweep", *small_cli_args, *grid, "--json", str(whole)]) == 0
    shards = []
    for k in (1, 2):
        path = tmp_path / f"shard{k}.json"
        assert (
            main(["sweep", *small_cli_args, *grid, "--shard", f"{k}/2", "--json", str(path)]) == 0
        )
        shards.append(str(path))
    merged = tmp_path / "merged.json"
    plot = tmp_path / "map.png"
    assert main(["sweep", "--merge", *shards, "--json", str(merged), "--plot", str(plot)]) == 0
    assert "P(learns) [95% CI]" in capsys.readouterr().out
    a, b = json.loads(whole.read_text()), json.loads(merged.read_text())
    assert a["points"] == b["points"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_sweep_exits_2_on_a_bad_grid(capsys):
    assert main(["sweep", "--grid", "colour=red"]) == 2
    assert "sweep.grid must be a field among" in capsys.readouterr().err


@pytest.mark.usefixtures("fresh_keras")
def test_fast_sweep_reaches_the_same_outcomes(small_cli_args, tmp_path):
    grid = ["--grid", "output_activation=relu,linear", "--seeds", "2"]
    paths = [tmp_path / "plain.json", tmp_path / "fast.json"]
    assert main(["sweep", *small_cli_args, *grid, "--json", str(paths[0])]) == 0
    assert main(["sweep", *small_cli_args, *grid, "--fast", "--json", str(paths[1])]) == 0
    plain, fast = (json.loads(p.read_text()) for p in paths)
    assert [(p["learned"], p["died"]) for p in fast["points"]] == [
        (p["learned"], p["died"]) for p in plain["points"]
    ]


# -- sweep --merge: what a user may hand it ----------------------------------------

_SHARD = {
    "grid": {"optimizer": ["adam", "sgd"]},
    "base": {"cell": {}, "train": {}},
    "seeds": 1,
    "runs": [
        {"values": {"optimizer": "adam"}, "seed": 0, "learned": True, "died": False,
         "death_step": None},
    ],
}  # fmt: skip


def _broken(**changes):
    shard = json.loads(json.dumps(_SHARD))
    run = {**shard["runs"][0], **changes.pop("run", {})}
    run = {k: v for k, v in run.items() if v != "<absent>"}
    return {**shard, "runs": [run], **changes}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ({"profile": "ci", "invariants": []}, "without grid, base, seeds, runs; its keys: profile"),
        ([1, 2], "a JSON list"),
        (_broken(grid=["optimizer"]), "its grid is not a map from field to values"),
        (_broken(runs={"a": 1}), "its runs are a JSON dict, not a list"),
        (_broken(run={"learned": "<absent>"}), "run 1 has no learned"),
        (_broken(run={"values": {"lr": 1}}), "do not name the grid's ['optimizer']"),
    ],
)
def test_merging_a_file_that_is_no_sweep_report_exits_2_naming_it_and_what_it_lacks(
    tmp_path, capsys, content, said
):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    assert main(["sweep", "--merge", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path} (" in err and said in err
    assert "must be sweep reports or checkpoints" in err
    assert "Traceback" not in err


def test_merging_a_binary_file_exits_2_naming_it(tmp_path, capsys):
    path = tmp_path / "loss.png"
    path.write_bytes(bytes(range(256)))
    assert main(["sweep", "--merge", str(path)]) == 2
    assert f"{path} ('utf-8' codec can't decode" in capsys.readouterr().err


def test_merging_shards_of_two_sweeps_names_the_file_that_differs(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_SHARD))
    second.write_text(json.dumps({**_SHARD, "grid": {"optimizer": ["adam", "nadam"]}}))
    assert main(["sweep", "--merge", str(first), str(second)]) == 2
    err = capsys.readouterr().err
    assert (
        f"the same grid and base as {first}. Received: merge='{second} (its grid differs)'" in err
    )


def test_a_well_formed_shard_merges(tmp_path, capsys):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_SHARD))
    assert main(["sweep", "--merge", str(path), str(path)]) == 0
    assert "adam" in capsys.readouterr().out


def test_a_binary_file_is_refused_as_a_checkpoint(tmp_path):
    path = tmp_path / "loss.png"
    path.write_bytes(bytes(range(256)))
    assert not is_checkpoint(path)
    with pytest.raises(
        InvalidConfig, match="a file that starts with a cellverify-sweep-checkpoint"
    ):
        Checkpoint(path, {"grid": {}}).load()


def _shard(k: int, n: int, optimizer: str) -> dict:
    run = {**_SHARD["runs"][0], "values": {"optimizer": optimizer}}
    return {**_SHARD, "shard": [k, n], "runs": [run]}


def test_merging_one_shard_of_two_says_how_many_runs_it_holds_and_which_shard_it_lacks(
    tmp_path, capsys
):
    first, merged = tmp_path / "part1.json", tmp_path / "merged.json"
    first.write_text(json.dumps(_shard(1, 2, "adam")))
    assert main(["sweep", "--merge", str(first), "--json", str(merged)]) == 0
    out = capsys.readouterr().out
    assert "incomplete: 1 of the sweep's 2 runs; shards not merged: 2/2" in out
    report = json.loads(merged.read_text())
    assert (report["runs_expected"], report["runs_missing"]) == (2, 1)
    assert report["shards_missing"] == ["2/2"]


def test_merging_every_shard_says_nothing_is_missing(tmp_path, capsys):
    paths = [tmp_path / "part1.json", tmp_path / "part2.json"]
    for k, (path, optimizer) in enumerate(zip(paths, ["adam", "sgd"], strict=True), 1):
        path.write_text(json.dumps(_shard(k, 2, optimizer)))
    assert main(["sweep", "--merge", *map(str, paths)]) == 0
    assert "incomplete" not in capsys.readouterr().out


def test_a_stopped_sweep_without_shards_is_reported_incomplete_with_the_way_to_finish_it():
    report = aggregate([_SHARD])
    assert (report["runs_missing"], report["shards_missing"]) == (1, [])
    assert "a sweep stopped early (run it again with its --checkpoint)" in render_sweep(report)


def test_a_merge_refuses_the_options_of_a_run_naming_each_it_would_have_ignored(tmp_path, capsys):
    path = tmp_path / "part1.json"
    path.write_text(json.dumps(_shard(1, 2, "adam")))
    argv = ["sweep", "--merge", str(path), "--seeds", "3", "--grid", "optimizer=sgd", "--plain"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "only --json and --plot apply" in err
    assert "Received: merge='--grid --seeds --plain'" in err
