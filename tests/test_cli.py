"""Tests of the command line (mixedmodels.cli.main): datasets, --version, fit on bundled data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import mixedmodels as mm
from mixedmodels import datasets
from mixedmodels.cli import main

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"mixedmodels {mm.__version__}\n"
    # One version: the package's agrees with the project's metadata.
    declared = re.search(r'^version = "([^"]+)"$', PYPROJECT.read_text(encoding="utf-8"),
                         re.MULTILINE)
    assert declared and mm.__version__ == declared.group(1)


def test_datasets_lists_every_dataset_with_size_and_description(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "rows", "x", "columns", "description"]
    rows = lines[1:]
    assert len(rows) == len(datasets.names())
    for line, name in zip(rows, datasets.names()):
        frame = datasets.load(name)
        match = re.fullmatch(r"(\S+)\s+(\d+) x (\d+)\s+(.+)", line)
        assert match, line
        assert match.group(1) == name
        assert (int(match.group(2)), int(match.group(3))) == frame.shape
        assert match.group(4) == datasets.description(name)
    salary = next(line for line in rows if line.startswith("salary "))
    assert "1121 x 4" in salary and "SIMULATED" in salary


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "command is required" in capsys.readouterr().err


def test_fit_on_the_bundled_salary_data(capsys):
    formula = "salary ~ 1 + service + (1 + service | organisation)"
    assert main(["fit", formula, "--data", "salary"]) == 0
    out = capsys.readouterr().out
    assert "Data: salary" in out
    assert "Number of obs: 1121, groups:  organisation, 20" in out
    # The lecture's correlation of the random intercepts and slopes.
    assert re.search(r"service\s+\d+\s+[\d.]+\s+-0\.59\b", out)


def test_fit_reads_a_glob_of_parquet_files_through_duckdb(tmp_path, capsys):
    pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    sleep = datasets.load("sleepstudy")
    for k, part in enumerate((sleep.iloc[:90], sleep.iloc[90:])):
        part.to_parquet(tmp_path / f"part{k}.parquet")
    formula = "Reaction ~ Days + (Days | Subject)"
    assert main(["fit", formula, "--data", "sleepstudy"]) == 0
    in_memory = capsys.readouterr().out
    pattern = str(tmp_path / "*.parquet")
    assert main(["fit", formula, "--data", pattern]) == 0
    from_files = capsys.readouterr().out
    assert f"Data: {pattern}" in from_files
    assert from_files.replace(f"Data: {pattern}", "Data: sleepstudy") == in_memory
    assert main(["fit", formula, "--data", str(tmp_path / "none" / "*.parquet")]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_fit_engine_option_for_files_and_directories(tmp_path, capsys):
    pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    from mixedmodels.cli import build_parser, fit_engine

    sleep = datasets.load("sleepstudy")
    (tmp_path / "dir").mkdir()
    for k, part in enumerate((sleep.iloc[:90], sleep.iloc[90:])):
        part.to_parquet(tmp_path / "dir" / f"part{k}.parquet")
    sleep.to_parquet(tmp_path / "sleep.parquet")
    formula = "Reaction ~ Days + (Days | Subject)"
    single, folder = str(tmp_path / "sleep.parquet"), str(tmp_path / "dir")

    def engine(*argv):
        return fit_engine(build_parser().parse_args(["fit", formula, *argv]))

    assert engine("--data", single) == "memory"
    assert engine("--data", folder) == "duckdb"
    assert engine("--data", str(tmp_path / "dir" / "*.parquet")) == "duckdb"
    assert engine("--data", folder, "--family", "poisson") == "memory"
    assert engine("--data", single, "--engine", "duckdb") == "duckdb"
    assert main(["fit", formula, "--data", single]) == 0
    in_memory = capsys.readouterr().out
    assert main(["fit", formula, "--data", single, "--engine", "duckdb"]) == 0
    assert capsys.readouterr().out == in_memory
    assert main(["fit", formula, "--data", folder]) == 0
    assert capsys.readouterr().out.replace(f"Data: {folder}", "Data: sleep") == in_memory
    assert main(["fit", formula, "--data", folder, "--engine", "memory"]) == 0
    assert capsys.readouterr().out.replace(f"Data: {folder}", "Data: sleep") == in_memory
    assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", single, "--engine",
                 "duckdb", "--family", "poisson"]) == 2
    assert "--engine duckdb fits lmer only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", formula, "--data", single, "--engine", "spark"])
    assert "invalid choice: 'spark'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "--engine {memory,duckdb}" in capsys.readouterr().out
