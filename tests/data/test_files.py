"""Tests for personasim.data.tables: loading and validating data-mode files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.core.errors import DataError
from personasim.data.ab_results import load_ab_results
from personasim.data.campaigns import load_campaigns
from personasim.data.events import load_events
from personasim.data.recipients import load_recipients
from personasim.data.tables import read_table


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def raises(func: Callable[..., object], *args: object, **kwargs: object) -> DataError:
    """Call ``func(*args, **kwargs)`` expecting a DataError, and return it."""
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    return info.value


# --- read_table --------------------------------------------------------------------------


def test_read_table_rejects_other_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "people.xlsx", "a\n1\n")
    err = raises(read_table, path)
    assert str(path) in str(err)
    assert "xlsx" in err.message


@pytest.mark.parametrize("text", ["", "recipient_id,age\n"])
def test_read_table_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "r.csv", text)
    err = raises(load_recipients, path)
    assert err.source == str(path)
    assert "file is empty" in str(err)


def test_read_table_missing_file(tmp_path: Path) -> None:
    err = raises(read_table, tmp_path / "nope.csv")
    assert "not found" in err.message


def test_read_table_unparseable_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, "r.parquet", "this is not parquet")
    err = raises(read_table, path)
    assert err.source == str(path)
    assert "Parquet" in err.message


def test_read_table_malformed_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", 'a,b\n1,2\n3,"unterminated\n')
    err = raises(read_table, path)
    assert err.source == str(path)


# --- recipients --------------------------------------------------------------------------


def test_recipients_consent_parsing_and_ids_as_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.csv",
        "recipient_id,age,consent,region\n"
        "007,30,Yes,north\n008,40,no,south\n009,50,TRUE,north\n010,60,0,east\n011,70,1,x\n",
    )
    df = load_recipients(path)
    assert list(df.columns[:2]) == ["recipient_id", "consent"]
    assert df["recipient_id"].tolist() == ["007", "008", "009", "010", "011"]
    assert df["consent"].tolist() == [True, False, True, False, True]
    assert df["consent"].dtype == bool
    assert df["age"].tolist() == [30, 40, 50, 60, 70]


def test_recipients_without_consent_column_all_true(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,age\na,1\nb,2\n")
    df = load_recipients(path)
    assert df["consent"].tolist() == [True, True]
    assert list(df.columns) == ["recipient_id", "consent", "age"]


def test_recipients_bad_consent_names_row_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,consent\na,yes\nb,no\nc,maybe\n")
    err = raises(load_recipients, path)
    assert str(path) in str(err)
    assert "row 3" in str(err)
    assert "maybe" in str(err)


def test_recipients_duplicate_id_names_row_and_id(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,age\na,1\nb,2\nc,3\nb,4\n")
    err = raises(load_recipients, path)
    assert "row 4" in str(err)
    assert "'b'" in str(err)
    assert "row 2" in err.message  # where it was first seen


def test_recipients_missing_id_column(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipent_id,age\na,1\n")
    err = raises(load_recipients, path)
    assert err.location == "column 'recipient_id'"
    assert "recipent_id" in err.message  # did-you-mean from the columns present


def test_recipients_missing_attribute_names_column_and_row(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,age,region\na,1,n\nb,2,s\nc,,n\n")
    err = raises(load_recipients, path)
    assert "row 3" in str(err)
    assert "'age'" in str(err)


def test_recipients_constant_attribute_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,country,age\na,fr,30\nb,fr,41\nc,fr,52\n")
    err = raises(load_recipients, path)
    assert err.location == "column 'country'"
    assert "constant" in err.message and "'fr'" in err.message


def test_recipients_number_stored_as_text_names_the_stray_row(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,tenure\na,12\nb,-\nc,30\nd,7\n")
    err = raises(load_recipients, path)
    assert err.location == "row 2, column 'tenure'"
    assert "'-'" in err.message


def test_recipients_id_like_text_column_is_refused(tmp_path: Path) -> None:
    rows = "".join(f"r{i},code{i},{i % 2}\n" for i in range(12))
    path = write(tmp_path, "r.csv", "recipient_id,voucher,vip\n" + rows)
    err = raises(load_recipients, path, max_levels=10)
    assert err.location == "column 'voucher'"
    assert "12 distinct values" in err.message and "data.max_levels=10" in err.message
    assert load_recipients(path, max_levels=12)["voucher"].nunique() == 12


def test_recipients_scored_one_at_a_time_skip_audience_checks(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,region,tenure\na,north,12\n")
    assert load_recipients(path, max_levels=None)["region"].tolist() == ["north"]
    stray = write(tmp_path, "s.csv", "recipient_id,tenure\na,12\nb,n/a?\nc,4\n")
    assert raises(load_recipients, stray, max_levels=None).location == "row 2, column 'tenure'"


def test_recipients_parquet_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "recipient_id": [1, 2, 3],
            "consent": [True, False, True],
            "spend": [10.5, 20.0, 3.25],
            "region": ["n", "s", "e"],
        }
    )
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    df = load_recipients(path)
    assert df["recipient_id"].tolist() == ["1", "2", "3"]
    assert df["consent"].tolist() == [True, False, True]
    assert df["spend"].tolist() == [10.5, 20.0, 3.25]
    assert df["region"].tolist() == ["n", "s", "e"]


def test_recipients_numbers_stored_as_text_in_parquet_are_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"recipient_id": ["a", "b", "c"], "age": ["20", " 23", "41"],
                          "zip": ["n1", "20", "s2"]})
    frame.to_parquet(tmp_path / "r.parquet")
    df = load_recipients(tmp_path / "r.parquet")  # found by fuzzing: this raised IndexError
    assert df["age"].tolist() == [20, 23, 41]
    assert df["zip"].tolist() == ["n1", "20", "s2"]


def test_csv_text_like_na_is_kept_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "recipient_id,region,age\na,NA,30\nb,EU,n/a\nc,NA,41\n")
    err = raises(load_recipients, path)
    assert (err.location, "'n/a'" in err.message) == ("row 2, column 'age'", True)
    ok = write(tmp_path, "ok.csv", "recipient_id,region\na,NA\nb,EU\n")
    assert load_recipients(ok)["region"].tolist() == ["NA", "EU"]  # North America, not missing


def test_csv_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("recipient_id,city\na,Paris\nb,Orléans\n".encode("latin-1"))
    err = raises(load_recipients, path)
    assert err.location == "line 3" and "not UTF-8 text (byte 0xe9)" in err.message


# --- campaigns ---------------------------------------------------------------------------


def test_campaigns_features_control_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.csv",
        "campaign_id,value,cost,control,channel,offer,copy,discount,tone\n"
        "hold,0,0,yes,,,,,\n"
        "a,50,0.5,no,sms,20% off,Hi there,0.2,warm\n"
        "b,40,0.1,,,,,0.1,formal\n",
    )
    campaigns = load_campaigns(path)
    assert [c.id for c in campaigns] == ["hold", "a", "b"]
    assert [c.control for c in campaigns] == [True, False, False]
    assert campaigns[0].features == {}
    assert campaigns[1].channel == "sms"
    assert campaigns[2].channel == "email"
    assert campaigns[1].offer == "20% off"
    assert campaigns[1].copy_text == "Hi there"
    assert campaigns[1].features == {"discount": 0.2, "tone": "warm"}
    assert isinstance(campaigns[2].features["discount"], float)
    assert campaigns[1].discount == pytest.approx(0.2)
    assert campaigns[1].value == 50.0 and campaigns[1].cost == 0.5


def test_campaigns_duplicate_id(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "campaign_id,value,cost\na,1,1\nb,1,1\na,2,2\n")
    err = raises(load_campaigns, path)
    assert "row 3" in str(err) and "'a'" in str(err)


def test_campaigns_negative_cost(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "campaign_id,value,cost\na,1,1\nb,1,-2\n")
    err = raises(load_campaigns, path)
    assert "row 2" in str(err) and "'cost'" in str(err) and "-2" in str(err)


def test_campaigns_non_numeric_value(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "campaign_id,value,cost\na,lots,1\n")
    err = raises(load_campaigns, path)
    assert "row 1" in str(err) and "'value'" in str(err) and "lots" in str(err)


def test_campaigns_two_controls(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.csv", "campaign_id,value,cost,control\na,1,1,1\nb,1,1,0\nc,1,1,true\n"
    )
    err = raises(load_campaigns, path)
    assert "row 3" in str(err) and "control" in err.message


def test_campaigns_bad_control_flag(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "campaign_id,value,cost,control\na,1,1,no\nb,1,1,perhaps\n")
    err = raises(load_campaigns, path)
    assert "row 2" in str(err) and "'control'" in str(err) and "perhaps" in str(err)


def test_campaigns_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "campaign_id,value\na,1\n")
    err = raises(load_campaigns, path)
    assert err.location == "column 'cost'"


# --- A/B results -------------------------------------------------------------------------


AB_HEADER = "recipient_id,campaign_id,outcome\n"


def test_ab_results_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ab.csv",
        "recipient_id,campaign_id,outcome,value,propensity\n"
        "1,spring,1,12.5,0.5\n2,spring,0,,0.5\n3,summer,true,3,1\n4,summer,False,0,0.25\n",
    )
    df = load_ab_results(path, {"spring", "summer"}, {"1", "2", "3", "4"})
    assert df["outcome"].dtype == np.int8
    assert df["outcome"].tolist() == [1, 0, 1, 0]
    assert df["recipient_id"].tolist() == ["1", "2", "3", "4"]
    assert df["value"].tolist() == [12.5, 0.0, 3.0, 0.0]
    assert df["propensity"].tolist() == [0.5, 0.5, 1.0, 0.25]


def test_ab_results_bad_outcome(tmp_path: Path) -> None:
    path = write(tmp_path, "ab.csv", AB_HEADER + "1,a,0\n2,a,1\n3,a,2\n")
    err = raises(load_ab_results, path, {"a"})
    assert str(path) in str(err)
    assert "row 3" in str(err) and "'2'" in str(err)


def test_ab_results_unknown_campaign_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "ab.csv", AB_HEADER + "1,spring_sale,0\n2,sprng_sale,1\n")
    err = raises(load_ab_results, path, {"spring_sale", "winter"})
    assert "row 2" in str(err)
    assert "sprng_sale" in err.message
    assert "did you mean 'spring_sale'" in err.message


def test_ab_results_unknown_recipient(tmp_path: Path) -> None:
    path = write(tmp_path, "ab.csv", AB_HEADER + "1,a,0\n99,a,1\n")
    err = raises(load_ab_results, path, {"a"}, {"1", "2"})
    assert "row 2" in str(err) and "'99'" in str(err)
    assert load_ab_results(path, {"a"}).shape[0] == 2  # no recipient check without ids


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.1"])
def test_ab_results_bad_propensity(tmp_path: Path, bad: str) -> None:
    path = write(
        tmp_path, "ab.csv", f"recipient_id,campaign_id,outcome,propensity\n1,a,0,0.5\n2,a,1,{bad}\n"
    )
    err = raises(load_ab_results, path, {"a"})
    assert "row 2" in str(err) and "'propensity'" in str(err)


def test_ab_results_missing_outcome_column(tmp_path: Path) -> None:
    path = write(tmp_path, "ab.csv", "recipient_id,campaign_id,outcom\n1,a,0\n")
    err = raises(load_ab_results, path, {"a"})
    assert err.location == "column 'outcome'"


# --- events ------------------------------------------------------------------------------


def test_events_parse_lists_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.csv",
        "name,start_week,end_week,propensity_shift,price_sensitivity_multiplier,personas,channels\n"
        "downturn,3,6,-0.5,1.5,persona_1; persona_2,\n"
        "holiday,10,11,0.4,,,email;sms\n",
    )
    events = load_events(path)
    assert [e.name for e in events] == ["downturn", "holiday"]
    assert events[0].personas == ["persona_1", "persona_2"]
    assert events[0].channels is None
    assert events[0].price_sensitivity_multiplier == 1.5
    assert events[1].price_sensitivity_multiplier == 1.0
    assert events[1].channels == ["email", "sms"]
    assert events[1].start_week == 10 and isinstance(events[1].start_week, int)


def test_events_bad_row_names_row_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "name,start_week,end_week\na,1,2\nb,0,3\n")
    err = raises(load_events, path)
    assert "row 2" in str(err) and "'start_week'" in str(err)


def test_events_end_before_start(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "name,start_week,end_week\na,5,2\n")
    err = raises(load_events, path)
    assert "row 1" in str(err) and "end_week" in str(err)


def test_events_unknown_column(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv", "name,start_week,end_week,chanels\na,1,2,email\n")
    err = raises(load_events, path)
    assert err.location == "column 'chanels'"
    assert "channels" in err.message


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolon"), ("\t", "tab"), ("|", "bar")])
def test_csv_with_another_separator_says_so(tmp_path: Path, sep: str, word: str) -> None:
    path = write(tmp_path, "r.csv", f"recipient_id{sep}age\na{sep}3\nb{sep}4\n")
    err = raises(read_table, path)
    assert f"{word}-separated" in err.message and err.source == str(path)
