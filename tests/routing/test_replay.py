"""The replay command line, run as users run it: ``python -m routing.replay`` in a subprocess."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from routing.engine.calllog import COLUMNS, read_call_log, write_call_log
from routing.engine.ewt import ESTIMATORS
from routing.engine.queue_sim import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routing.replay", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


HEADER = ",".join(COLUMNS)
GOOD_AND_BAD = "\n".join(
    [
        HEADER,  # line 1
        "a,sales,0,100,115,115,answered,115,300,ann",  # 2 good: answered at once
        "b,sales,0,101,116,200,answered,200,400,bob",  # 3 good: waited 84 s
        "c,sales,1,102,117,150,abandoned,,,",  # 4 good: priority caller hung up
        "d,sales,0,-5,10,20,answered,20,30,ann",  # 5 bad: negative time
        "e,sales,0,103,nan,130,answered,130,200,ann",  # 6 bad: NaN
        "f,sales,0,104,119,110,answered,119,200,ann",  # 7 bad: exit before entry
        "g,sales,0,105,120,140,transferred,140,200,ann",  # 8 bad: unknown outcome
        "h,sales,0,106,121,140,answered,,,",  # 9 bad: answered without service times
        "b,sales,0,107,122,140,abandoned,,,",  # 10 bad: duplicate call_id
        "i,sales,x,108,123,140,abandoned,,,",  # 11 bad: priority not an integer
        "j,sales,0,109,124,160,answered,160,250,cat",  # 12 good
        "k,support,0,110,125,125,answered,125,225,dan",  # 13 good: another queue
        "l,sales,0,111,126,170,abandoned,150,,",  # 14 bad: abandoned with service time
    ]
)


def test_list_names_every_estimator() -> None:
    result = run_cli("ewt", "--list")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == list(ESTIMATORS)


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text(GOOD_AND_BAD + "\n")
    out = tmp_path / "pred.csv"
    result = run_cli("ewt", "--calls", str(calls), "--estimator", "ql", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for row, reason in [
        (5, "negative"),
        (6, "not finite"),
        (7, "queue_exited_at is before queue_entered_at"),
        (8, "unknown outcome"),
        (9, "service_started_at is empty"),
        (10, "duplicate call_id"),
        (11, "priority"),
        (14, "abandoned call has service times"),
    ]:
        assert f"row {row}: " in result.stderr and reason in result.stderr, (row, result.stderr)
    assert "5 predictions, 8 bad rows skipped" in result.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["call_id", "predicted_wait_s"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "c", "j", "k"]
    predicted = {r[0]: float(r[1]) for r in rows[1:]}
    assert predicted["a"] == 0.0  # idle queue
    assert predicted["k"] == 0.0  # its own queue is idle
    assert predicted["b"] > 0  # a is busy and nothing says there is a second agent


def test_range_columns_and_stdout(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text(GOOD_AND_BAD + "\n")
    result = run_cli(
        "ewt", "--calls", str(calls), "--estimator", "blend", "--out", "-", "--with-range"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["call_id", "predicted_wait_s", "low_s", "high_s"]
    for _call, seconds, low, high in rows[1:]:
        assert float(low) <= float(seconds) <= float(high)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text(GOOD_AND_BAD + "\n")
    unknown = run_cli("ewt", "--calls", str(calls), "--estimator", "crystal-ball", "--out", "-")
    assert unknown.returncode == 2 and "unknown estimator" in unknown.stderr
    missing = run_cli(
        "ewt", "--calls", str(tmp_path / "nope.csv"), "--estimator", "ql", "--out", "-"
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    incomplete = run_cli("ewt", "--estimator", "ql")
    assert incomplete.returncode == 2


def test_header_without_required_columns(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text("call_id,queue\nx,sales\n")
    result = run_cli("ewt", "--calls", str(calls), "--estimator", "ql", "--out", "-")
    assert result.returncode == 0
    assert "row 1: header lacks column(s)" in result.stderr
    assert result.stdout.strip() == "call_id,predicted_wait_s"


def test_simulated_log_round_trip_is_deterministic(tmp_path: Path) -> None:
    config = SimConfig(
        calls_per_bin=(40.0, 80.0, 60.0), agents_per_bin=(3, 5, 4), days=2, priority_share=0.3
    )
    res = simulate(config)
    calls = tmp_path / "sim.csv"
    with calls.open("w", newline="") as fh:
        write_call_log(fh, res.records)
    with calls.open(newline="") as fh:
        back, bad = read_call_log(fh)
    assert bad == [] and back == res.records
    outputs = []
    for attempt in range(2):
        out = tmp_path / f"pred{attempt}.csv"
        result = run_cli("ewt", "--calls", str(calls), "--estimator", "blend", "--out", str(out))
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == len(res.records) + 1
