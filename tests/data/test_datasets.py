"""The Hillstrom loader: locating the file, checking it, tidy tables, the split, the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hillstrom_helpers import (
    shared_hillstrom,
    shared_path,
    synthetic_hillstrom,
    write_hillstrom,
)

from personasim.config.loading import load_config
from personasim.core.errors import ConfigError, DataError
from personasim.data.datasets import split_customers
from personasim.data.hillstrom import (
    CONTROL,
    HILLSTROM_FILE,
    hillstrom_tables,
    load_hillstrom,
    locate_hillstrom,
    read_hillstrom,
)
from personasim.experiments.stages.inputs import load_inputs


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests start with no data override and an empty cache of their own."""
    monkeypatch.delenv("PERSONASIM_DATA", raising=False)
    monkeypatch.setenv("PERSONASIM_CACHE", str(tmp_path / "cache"))


def data_error(path: Path, expected_rows: int | None = 600) -> str:
    with pytest.raises(DataError) as info:
        read_hillstrom(path, expected_rows)
    return info.value.one_line()


# --- checking the file -------------------------------------------------------------------


def test_a_good_file_reads_with_campaign_ids(tmp_path: Path) -> None:
    frame = read_hillstrom(write_hillstrom(tmp_path / "h.csv"), expected_rows=600)
    assert len(frame) == 600
    assert set(frame["segment"]) == {"mens_email", "womens_email", CONTROL}


def test_wrong_row_count_is_one_line(tmp_path: Path) -> None:
    message = data_error(write_hillstrom(tmp_path / "h.csv", n=500), expected_rows=64_000)
    assert message == (f"{tmp_path / 'h.csv'}: expected 64,000 customer rows, found 500 "
                       "(truncated or not the Hillstrom file?)")
    assert "\n" not in message


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    synthetic_hillstrom(300).drop(columns="newbie").to_csv(path, index=False)
    assert "column 'newbie': required column is missing" in data_error(path, None)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("segment", "Kids E-Mail", "row 3, column 'segment': unknown arm; expected one of "
                                   "Mens E-Mail, Womens E-Mail, No E-Mail"),
        ("visit", 2, "row 3, column 'visit': expected 0 or 1"),
        ("spend", -5.0, "row 3, column 'spend': must be >= 0"),
        ("history", "lots", "row 3, column 'history': expected a number"),
        ("zip_code", "Suburb", "row 3, column 'zip_code': unknown value; expected one of "
                               "Urban, Surburban, Rural"),
    ],
)
def test_bad_cells_name_row_and_column(tmp_path: Path, column: str, value: object,
                                       expected: str) -> None:
    path = write_hillstrom(tmp_path / "h.csv", changes={(2, column): value})
    assert data_error(path) == f"{path}: {expected}"


def test_spend_without_a_conversion_is_rejected(tmp_path: Path) -> None:
    frame = synthetic_hillstrom(300)
    row = int(np.flatnonzero(frame["conversion"].to_numpy() == 0)[0])
    frame.loc[row, "spend"] = 40.0
    frame.to_csv(tmp_path / "h.csv", index=False)
    assert f"row {row + 1}, column 'spend': spend without a conversion" in data_error(
        tmp_path / "h.csv", None)


def test_unreadable_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert data_error(path, None).startswith(str(path))


# --- tidy tables -------------------------------------------------------------------------


def test_tables_have_ids_campaigns_and_outcomes(tmp_path: Path) -> None:
    raw = synthetic_hillstrom(900, seed=1)
    tables = load_hillstrom(write_hillstrom(tmp_path / "h.csv", n=900, seed=1),
                            expected_rows=900)
    rec, ab = tables.recipients, tables.ab_results
    assert rec["recipient_id"].is_unique and rec["recipient_id"].iloc[0] == "c00001"
    assert list(rec.columns[:2]) == ["recipient_id", "consent"] and rec["consent"].all()
    assert "segment" not in rec and "visit" not in rec
    assert [(c.id, c.control, c.value, c.cost) for c in tables.campaigns] == [
        ("mens_email", False, 1.0, 0.05), ("womens_email", False, 1.0, 0.05),
        (CONTROL, True, 1.0, 0.0)]
    assert (ab["recipient_id"] == rec["recipient_id"]).all()
    assert (ab["outcome"].to_numpy() == raw["visit"].to_numpy()).all()
    assert np.allclose(ab["spend"], raw["spend"]) and np.allclose(ab["propensity"], 1 / 3)


def test_spend_outcome_is_conversion_worth_the_mean_order(tmp_path: Path) -> None:
    raw = synthetic_hillstrom(900, seed=2)
    tables = hillstrom_tables(read_hillstrom(write_hillstrom(tmp_path / "h.csv", 900, 2),
                                             None), outcome="spend", cost=0.1)
    assert (tables.ab_results["outcome"].to_numpy() == raw["conversion"].to_numpy()).all()
    mean_order = raw.loc[raw["conversion"] == 1, "spend"].mean()
    assert tables.campaigns[0].value == pytest.approx(mean_order, abs=0.005)
    assert tables.campaigns[0].cost == 0.1
    fixed = hillstrom_tables(read_hillstrom(tmp_path / "h.csv", None), "visit", value=2.5)
    assert fixed.campaigns[1].value == 2.5


def test_split_is_seeded_and_stratified_by_arm() -> None:
    arms = np.repeat(np.array(["a", "b", "c"]), [300, 301, 299])
    held = split_customers(arms, 0.5, seed=4)
    assert (held == split_customers(arms, 0.5, seed=4)).all()
    assert not (held == split_customers(arms, 0.5, seed=5)).all()
    for arm, n in (("a", 300), ("b", 301), ("c", 299)):
        assert held[arms == arm].sum() == round(0.5 * n)
    assert not split_customers(arms, 0.0, seed=4).any()


# --- finding the file --------------------------------------------------------------------


def test_path_then_environment_then_cache(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    named, env = write_hillstrom(tmp_path / "a.csv"), write_hillstrom(tmp_path / "b.csv")
    monkeypatch.setenv("PERSONASIM_DATA", str(env))
    assert locate_hillstrom(named) == named
    assert locate_hillstrom() == env
    monkeypatch.delenv("PERSONASIM_DATA")
    cached = tmp_path / "cache" / HILLSTROM_FILE
    cached.parent.mkdir()
    cached.write_text("x")
    assert locate_hillstrom(fetch=False) == cached


def test_data_folder_in_the_environment_or_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("PERSONASIM_DATA", str(folder))
    with pytest.raises(DataError, match=r"data: no hillstrom.csv in this folder "
                                        r"\(from \$PERSONASIM_DATA\)"):
        locate_hillstrom()
    inside = write_hillstrom(folder / HILLSTROM_FILE)
    assert locate_hillstrom() == inside  # a folder, like SCIKIT_LEARN_DATA
    assert shared_path(str(folder)) == inside
    other = write_hillstrom(tmp_path / "copy.csv")
    monkeypatch.setenv("PERSONASIM_DATA", str(other))
    assert locate_hillstrom() == other  # still a file
    assert shared_path(str(other)) == other
    assert locate_hillstrom(folder) == inside  # dataset.path may name a folder too
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no hillstrom.csv in this folder \(from dataset.path\)"):
        locate_hillstrom(empty)


def test_missing_local_copy_names_where_it_came_from(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONASIM_DATA", str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match=r"nope.csv: file not found \(from \$PERSONASIM_DATA\)"):
        locate_hillstrom()


def test_download_goes_to_the_cache_without_network(tmp_path: Path) -> None:
    source = write_hillstrom(tmp_path / "origin.csv")
    got = locate_hillstrom(url=source.as_uri())  # file:// stands in for the public address
    assert got == tmp_path / "cache" / HILLSTROM_FILE
    assert got.read_bytes() == source.read_bytes()
    assert not list(got.parent.glob(".*part*"))
    with pytest.raises(DataError, match="not downloaded yet"):
        (tmp_path / "cache" / HILLSTROM_FILE).unlink()
        locate_hillstrom(fetch=False)


def test_failed_download_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download failed .* set PERSONASIM_DATA"):
        locate_hillstrom(url=(tmp_path / "missing.csv").as_uri())
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# --- the config ---------------------------------------------------------------------------


def write_config(tmp_path: Path, **dataset: object) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "h", "dataset": {"name": "hillstrom", **dataset}}))
    return path


def test_dataset_section_needs_no_personas_or_files(tmp_path: Path) -> None:
    write_hillstrom(tmp_path / "copy.csv")
    config = load_config(write_config(tmp_path, path="copy.csv", outcome="spend"))
    assert config.dataset is not None and config.dataset.path == tmp_path / "copy.csv"
    assert config.dataset.holdout_fraction == 0.5 and config.dataset.cost == 0.05


@pytest.mark.parametrize(
    ("dataset", "message"),
    [({"outcome": "clicks"}, "dataset.outcome: Input should be 'visit', 'conversion' or "
                             "'spend'"),
     ({"holdout": 0.3}, "dataset.holdout: unknown key 'holdout' (did you mean "
                        "'holdout_fraction'?)"),
     ({"path": "absent.csv"}, "dataset.path: file not found: absent.csv")],
)
def test_bad_dataset_settings_are_one_line(tmp_path: Path, dataset: dict,
                                           message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, **dataset))
    assert info.value.one_line() == f"{tmp_path / 'exp.yaml'}: {message}"


def test_dataset_and_data_files_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "h", "dataset": {"name": "hillstrom"},
                                    "campaigns": [{"id": "a"}]}))
    with pytest.raises(ConfigError, match="dataset: give a dataset or personas"):
        load_config(path)


def test_unknown_dataset_name_lists_the_known_ones(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, name="criteo"))
    with pytest.raises(ConfigError, match="dataset.name: unknown dataset 'criteo'.*hillstrom"):
        load_inputs(config, "exp.yaml", 0)


# --- the real file (skipped when the shared copy is absent) -------------------------------


def test_shared_copy_matches_its_readme() -> None:
    tables = load_hillstrom(shared_hillstrom())
    ab = tables.ab_results
    assert len(tables.recipients) == 64_000
    rates = ab.groupby("campaign_id")[["visit", "conversion", "spend"]].mean()
    counts = ab["campaign_id"].value_counts()
    assert counts.to_dict() == {"womens_email": 21_387, "mens_email": 21_307, CONTROL: 21_306}
    assert rates.loc["mens_email", "visit"] == pytest.approx(0.1828, abs=5e-5)
    assert rates.loc["womens_email", "conversion"] == pytest.approx(0.00884, abs=5e-6)
    assert rates.loc[CONTROL, "spend"] == pytest.approx(0.65, abs=0.005)
    assert isinstance(tables.recipients["zip_code"].iloc[0], str)
    assert pd.api.types.is_numeric_dtype(tables.recipients["log_history"])
