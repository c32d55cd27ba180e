"""The command line end to end: outputs, reproducibility, and one-line errors for bad input."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner

from personasim.cli import app
from personasim.experiments.run_check import disagreements
from personasim.ranking.plan_table import PLAN_FILE_COLUMNS, PLANNED_TABLE_COLUMNS
from personasim.ranking.prioritization import PRIORITY_COLUMNS

runner = CliRunner()
TINY_RUN_FILES = (
    "config.yaml", "manifest.json", "personas.csv", "personas_posterior.yaml", "posterior.npz",
    "posterior.nc",
    "policy.zip", "evaluation.csv", "metrics.csv", "learning_curve.csv", "prioritization.csv",
    "prioritization.parquet", "response_heatmap.png", "learning_curve.png",
    "policy_comparison.png", "plan.csv", "plan.parquet", "holdout.csv", "calendar.csv",
    "plan_evaluation.csv", "plan.png", "plan_evaluation.png",
)


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def test_run_writes_a_complete_directory(tiny_run: Path) -> None:
    for name in TINY_RUN_FILES:
        assert (tiny_run / name).is_file(), name
    table = pd.read_csv(tiny_run / "prioritization.csv")
    assert tuple(table.columns) == PLANNED_TABLE_COLUMNS
    assert len(table) == 600 * 2  # every recipient x every non-control campaign
    assert tuple(pd.read_csv(tiny_run / "plan.csv").columns) == PLAN_FILE_COLUMNS
    assert disagreements(tiny_run) == []
    evaluation = pd.read_csv(tiny_run / "evaluation.csv")
    assert set(evaluation["policy"]) == {"random", "ab_winner", "thompson", "ppo"}
    assert (evaluation["ci_low"] <= evaluation["mean_return"]).all()
    parquet = pd.read_parquet(tiny_run / "prioritization.parquet")
    assert len(parquet) == len(table)


def test_same_config_and_seed_give_identical_table(tiny_run: Path, tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", TINY_CONFIG)
    result = invoke("run", config, "--out", tmp_path / "again", "--quiet")
    assert result.exit_code == 0, result.output
    first = (tiny_run / "prioritization.csv").read_bytes()
    assert (tmp_path / "again" / "prioritization.csv").read_bytes() == first


def test_rank_applies_a_run_to_new_recipients(tiny_run: Path, tmp_path: Path) -> None:
    recipients = pd.DataFrame({
        "recipient_id": ["n1", "n2", "n3"],
        "age": [30, 50, 41],
        "region": ["urban", "rural", "urban"],
        "consent": [True, True, False],
    })
    recipients.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "ranked.parquet"
    result = invoke("rank", "--run", tiny_run, "--recipients", tmp_path / "new.csv", "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert tuple(table.columns) == PRIORITY_COLUMNS
    persona_of = dict(zip(table["recipient_id"], table["persona_id"], strict=False))
    assert persona_of["n1"] == "deal_seekers"
    assert set(table.loc[table["recipient_id"] == "n3", "action"]) == {"suppress"}


def test_plan_replans_a_run_for_new_recipients_and_budget(tiny_run: Path,
                                                          tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 400
    recipients = pd.DataFrame({
        "recipient_id": [f"n{i}" for i in range(n)],
        "age": rng.integers(20, 70, n),
        "region": rng.choice(["urban", "rural"], n),
        "consent": rng.random(n) > 0.1,
    })
    recipients.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "plan.csv"
    result = invoke("plan", "--run", tiny_run, "--recipients", tmp_path / "new.csv",
                    "--budget", "3.5", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Planned" in result.output and "$3.50 budget" in result.output
    plan = pd.read_csv(out)
    assert tuple(plan.columns) == PLAN_FILE_COLUMNS
    assert 0 < plan["cost"].sum() <= 3.5
    held = pd.read_csv(tmp_path / "plan_holdout.csv")
    assert len(held) == round(0.05 * n)
    assert not set(held["recipient_id"]) & set(plan["recipient_id"])
    refused = set(recipients.loc[~recipients["consent"], "recipient_id"])
    assert not refused & set(plan["recipient_id"])
    assert plan.groupby(["recipient_id", "week"]).size().max() == 1
    bigger = invoke("plan", "--run", tiny_run, "--recipients", tmp_path / "new.csv",
                    "--budget", "20", "--out", tmp_path / "more.parquet")
    assert bigger.exit_code == 0, bigger.output
    assert len(pd.read_parquet(tmp_path / "more.parquet")) > len(plan)


@pytest.mark.parametrize(
    ("setting", "needle"),
    [("plan.budget=-1", "plan.budget"),
     ("plan.max_per_week=3", "plan.max_per_horizon (2)"),
     ("plan.quiet_weeks=[99]", "plan.quiet_weeks"),
     ("plan.capacity={nope: 3}", "plan.capacity")],
)
def test_bad_plan_settings_are_one_line_errors(tiny_config_path: Path, setting: str,
                                               needle: str) -> None:
    result = invoke("validate", tiny_config_path, "--set", "plan.max_per_horizon=2",
                    "--set", setting)
    one_line_error(result, needle)


def test_plan_refuses_bad_input_and_writes_nothing(tiny_run: Path, tmp_path: Path) -> None:
    pd.DataFrame({"recipient_id": ["a", "b"], "age": [30, 40], "region": ["urban", "rural"],
                  "consent_fax": [True, False]}).to_csv(tmp_path / "fax.csv", index=False)
    out = tmp_path / "plan.csv"
    result = invoke("plan", "--run", tiny_run, "--recipients", tmp_path / "fax.csv",
                    "--out", out)
    one_line_error(result, "consent_fax", "no campaign uses")
    result = invoke("plan", "--run", tiny_run, "--recipients", tmp_path / "fax.csv",
                    "--budget", "-2", "--out", out)
    one_line_error(result, "--budget")
    assert list(tmp_path.iterdir()) == [tmp_path / "fax.csv"]


def test_validate_checks_without_running(tiny_config_path: Path) -> None:
    result = invoke("validate", tiny_config_path)
    assert result.exit_code == 0 and "2 personas" in result.output


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (lambda c: c.update(colour="red"), ["unknown key 'colour'"]),
        (lambda c: c["population"].update(size="many"), ["population.size"]),
        (lambda c: c.update(data={"recipients": "absent.csv"}), ["data.recipients", "absent.csv"]),
        (lambda c: c["personas"][0]["traits"].update(
            affinity={"flash": {"dist": "normal", "sd": 1}}), ["'flash' is not defined"]),
        (lambda c: c["policy"].update(algorithm="ppo2"), ["policy.algorithm", "did you mean"]),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, mutate, needles) -> None:  # noqa: ANN001
    payload = copy.deepcopy(TINY_CONFIG)
    mutate(payload)
    config = write_yaml(tmp_path / "bad.yaml", payload)
    one_line_error(invoke("run", config, "--out", tmp_path / "run", "--quiet"), "bad.yaml",
                    *needles)
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.glob(".run.partial-*"))


def _data_mode(tmp_path: Path, recipients: str, campaigns: str, ab: str) -> Path:
    (tmp_path / "recipients.csv").write_text(recipients)
    (tmp_path / "campaigns.csv").write_text(campaigns)
    (tmp_path / "ab.csv").write_text(ab)
    return write_yaml(tmp_path / "exp.yaml", {
        "name": "data", "seed": 1,
        "data": {"recipients": "recipients.csv", "campaigns": "campaigns.csv",
                 "ab_results": "ab.csv"},
    })


RECIPIENTS = "recipient_id,age,region\nr1,30,urban\nr2,45,rural\nr3,52,rural\n"
CAMPAIGNS = "campaign_id,value,cost,control\nmail,10,0.1,false\nnone,0,0,true\n"
AB = "recipient_id,campaign_id,outcome\nr1,mail,1\nr2,none,0\nr3,mail,0\n"


@pytest.mark.parametrize(
    ("files", "needles"),
    [
        ((RECIPIENTS, "campaign_id,value\nmail,10\n", AB), ["campaigns.csv", "'cost'"]),
        ((RECIPIENTS, CAMPAIGNS, AB.replace("r3,mail,0", "r3,mail,2")),
         ["ab.csv", "row 3", "'2'"]),
        ((RECIPIENTS, CAMPAIGNS, AB.replace("r3,mail", "r3,mial")), ["ab.csv", "row 3", "mial"]),
        ((RECIPIENTS.replace("r3,52", "r2,52"), CAMPAIGNS, AB), ["recipients.csv", "row 3", "r2"]),
        (("", CAMPAIGNS, AB), ["recipients.csv", "empty"]),
        (("recipient_id,age\n", CAMPAIGNS, AB), ["recipients.csv", "empty"]),
    ],
)
def test_bad_data_file_exits_2_with_one_line(tmp_path: Path, files, needles) -> None:  # noqa: ANN001
    config = _data_mode(tmp_path, *files)
    one_line_error(invoke("validate", config), *needles)
    one_line_error(invoke("run", config, "--out", tmp_path / "run", "--quiet"), *needles)
    assert not (tmp_path / "run").exists()


def test_existing_run_directory_is_not_overwritten(tiny_run: Path, tiny_config_path: Path) -> None:
    result = invoke("run", tiny_config_path, "--out", tiny_run, "--quiet")
    one_line_error(result, "already exists")


def test_one_line_errors_have_no_ansi_wrapping(tmp_path: Path) -> None:
    payload = copy.deepcopy(TINY_CONFIG)
    payload["campaigns"][0]["cost"] = "a very long invalid value " * 8
    config = write_yaml(tmp_path / "bad.yaml", payload)
    result = invoke("validate", config)
    one_line_error(result, "campaigns.0.cost")
    assert not re.search(r"\x1b\[", result.output)


HEAVY_MODULES = ("torch", "stable_baselines3", "pymc", "pytensor", "nutpie")


def test_validate_imports_no_torch_sb3_or_pymc() -> None:
    """Checking a config (registries included) must not pay for the training/sampling stacks."""
    repo = Path(__file__).resolve().parents[1]
    script = (
        "import sys\n"
        "from personasim.cli import app\n"
        "app(['validate', 'configs/quickstart.yaml'], standalone_mode=False)\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "OK configs/quickstart.yaml" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


@pytest.mark.parametrize(
    ("column", "values", "needles"),
    [
        ("country", ["fr"] * 6, ["column 'country'", "constant"]),
        ("tenure", ["3", "-", "12", "7", "9", "1"], ["row 2, column 'tenure'", "'-'"]),
        ("voucher", [f"v{i}" for i in range(6)], ["column 'voucher'", "data.max_levels=4"]),
    ],
)
def test_recipient_attributes_that_describe_nobody_are_refused(
        tmp_path: Path, column: str, values: list[str], needles: list[str]) -> None:
    recipients = pd.DataFrame({"recipient_id": [f"r{i}" for i in range(6)],
                               "region": ["n", "s", "n", "s", "e", "e"], column: values})
    recipients.to_csv(tmp_path / "recipients.csv", index=False)
    config = {"name": "attrs", "seed": 1, "data": {"recipients": "recipients.csv",
                                                    "max_levels": 4},
              "campaigns": [{"id": "mail", "value": 5, "cost": 0.1}]}
    path = write_yaml(tmp_path / "attrs.yaml", config)
    one_line_error(invoke("validate", path), "recipients.csv", *needles)
    out = tmp_path / "run"
    one_line_error(invoke("run", path, "--out", out), *needles)
    assert not out.exists() and not list(tmp_path.glob(".run.partial-*"))


@pytest.mark.parametrize(
    ("payload", "needles"),
    [
        ("name: café\nseed: 1\n".encode("latin-1"), ["not UTF-8", "0xe9"]),
        ("name: x\nseed: 1\n".encode("utf-16"), ["not UTF-8", "0xff"]),
        (bytes(range(256)), ["not UTF-8"]),
        (b"name: a\nseed: 1\nname: b\n", ["line 3", "duplicate key 'name'"]),
    ],
)
def test_config_bytes_that_are_not_a_config_are_one_line(
        tmp_path: Path, payload: bytes, needles: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(payload)
    one_line_error(invoke("validate", path), "bad.yaml", *needles)


def test_set_value_that_is_not_yaml_is_one_line(tiny_config_path: Path) -> None:
    one_line_error(invoke("validate", tiny_config_path, "--set", "policy.baselines=[random"),
                   "--set policy.baselines", "'[random'", "not valid YAML")


@pytest.mark.parametrize("columns", [["recipient_id"], ["recipient_id", "consent"]])
def test_recipients_without_attributes_are_one_line(tmp_path: Path, columns: list[str]) -> None:
    frame = pd.DataFrame({"recipient_id": ["a", "b", "c"], "consent": [True, False, True]})
    frame[columns].to_csv(tmp_path / "recipients.csv", index=False)
    path = write_yaml(tmp_path / "ids.yaml", {
        "name": "ids", "seed": 1, "data": {"recipients": "recipients.csv"},
        "campaigns": [{"id": "mail", "value": 5, "cost": 0.1}]})
    one_line_error(invoke("validate", path), "recipients.csv", "no attribute columns")


@pytest.mark.parametrize("damaged", ["config.yaml", "campaigns.yaml", "profiles.json",
                                     "posterior.npz"])
def test_rank_with_a_damaged_run_file_is_one_line(tiny_run: Path, tmp_path: Path,
                                                  damaged: str) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / damaged).write_text("garbage: [{")
    pd.DataFrame({"recipient_id": ["n1"], "age": [30], "region": ["urban"]}).to_csv(
        tmp_path / "new.csv", index=False)
    out = tmp_path / "ranked.csv"
    one_line_error(invoke("rank", "--run", run, "--recipients", tmp_path / "new.csv",
                          "--out", out), str(run))
    assert not out.exists()


def _help(command: str) -> str:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_help_says_what_rank_reads_and_that_set_repeats() -> None:
    rank = _help("rank")
    for needle in ("recipient_id", "persona attributes", "profiles.json", "consent (optional",
                   "consent_<channel> (optional"):
        assert needle in rank, rank
    for command in ("run", "validate"):
        assert "Repeat --set for several values" in _help(command)


def test_version() -> None:
    from importlib import metadata

    result = invoke("--version")
    assert result.exit_code == 0 and metadata.version("personasim") in result.output


def test_a_fresh_run_does_not_say_it_resumed(tiny_run: Path) -> None:
    import json

    manifest = json.loads((tiny_run / "manifest.json").read_text())
    for algorithm in manifest["policy_training"]["algorithms"].values():
        assert "resumed_from" not in algorithm
    assert manifest["resume"]["reused_stages"] == []


def test_run_tables_and_manifest_carry_no_float_noise(tiny_run: Path) -> None:
    text = (tiny_run / "manifest.json").read_text() + (tiny_run / "evaluation.csv").read_text()
    assert not re.search(r"\d\.\d{7,}", text)


def test_personas_csv_says_how_many_recipients_each_persona_has(tiny_run: Path) -> None:
    personas = pd.read_csv(tiny_run / "personas.csv")
    assert personas["size"].notna().all()
    assert personas["size"].sum() == TINY_CONFIG["population"]["size"]


def test_report_numbers_are_the_tables(tiny_run: Path) -> None:
    page = (tiny_run / "report.html").read_text()
    table = pd.read_csv(tiny_run / "prioritization.csv")
    checked = 0
    for persona, rows in table.groupby("persona_id"):
        card = page[page.index(f"<h3>{persona}</h3>"):]
        card = card[:card.index("</div></div>") if "</div></div>" in card else None]
        found = re.search(r"(\S+) adds [+-][\d.]+ \w+ per 100 customers .*?nets ([+-])\$([\d,]+) "
                          r"per 1,000", card)
        assert found, persona
        label, sign, dollars = found.groups()
        best = rows[rows["rank"] == 1]
        net = float(best["priority"].mean()) * 1000
        assert f"{'-' if net < 0 else '+'}{abs(net):,.0f}" == f"{sign}{dollars}", persona
        checked += 1
    assert checked == table["persona_id"].nunique()


def test_a_run_with_no_possible_message_warns_and_writes_an_empty_plan(
        tiny_config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke("run", tiny_config_path, "--out", out, "--set", "plan.budget=0",
                    "--set", "output.plots=false")
    assert result.exit_code == 0, result.output
    assert "The plan is empty" in result.output
    assert "Planned 0 messages" in result.output
    plan = pd.read_csv(out / "plan.csv")
    assert plan.empty and tuple(plan.columns) == PLAN_FILE_COLUMNS
    assert (pd.read_csv(out / "prioritization.csv")["action"] == "suppress").all()
    assert disagreements(out) == []
