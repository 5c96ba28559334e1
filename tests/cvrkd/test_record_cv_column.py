"""The out-of-fold table gains a run's column, keeps its own columns as written, and refuses other folds."""
from pathlib import Path

import pytest

from scripts.record_cv_column import record

TABLE = "image,fold,mos,probe,student\na.png,0,40.672222,45.51075,-2.99770\nb.png,1,64.3,53.9,1.50000\nc.png,0,38.1,34.6,-26.40405\n"


def test_a_run_column_joins_the_table_and_the_report_shows_the_drift(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text(TABLE)
    run = tmp_path / "run.csv"
    run.write_text("image,fold,mos,probe,new\nc.png,0,38.1,34.6005,1.0\na.png,0,40.672222,45.51075,3.0\n"
                   "b.png,1,64.3,53.9,2.0\n")
    report = record(run, "new", table)
    lines = table.read_text().splitlines()
    assert lines[0] == "image,fold,mos,probe,student,new"
    assert lines[1] == "a.png,0,40.672222,45.51075,-2.99770,3.00000"  # earlier text untouched
    assert "new: pooled SRCC with the MOS 0.500" in report
    assert "shared column probe: max |table - run| 0.0005 points" in report
    assert "rank correlation with the table's student: 0.500" in report


def test_a_run_on_other_folds_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text(TABLE)
    run = tmp_path / "run.csv"
    run.write_text("image,fold,mos,new\na.png,1,40.672222,3.0\nb.png,1,64.3,2.0\nc.png,0,38.1,1.0\n")
    with pytest.raises(SystemExit, match="recorded folds"):
        record(run, "new", table)
    assert table.read_text() == TABLE
