"""Bad input through the command line: exit code 2, one line naming the file and the field or
row, no traceback, and nothing written (no run folder, no partial folder, no output table).

Each config and data case runs through ``validate`` and ``run``; each damaged-run case through
``rank`` and ``plan``.
"""

from __future__ import annotations

import copy
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner, Result

from personasim.cli import app

runner = CliRunner()
Config = dict[str, Any]


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def refused_everywhere(tmp_path: Path, config: Path, extra: list[str], needles: list[str]) -> None:
    """``validate`` and ``run`` both refuse with one line, and ``run`` writes nothing."""
    one_line_error(invoke("validate", config, *extra), *needles)
    out = tmp_path / "run"
    one_line_error(invoke("run", config, "--out", out, "--quiet", *extra), *needles)
    assert not out.exists() and not list(tmp_path.glob(".run.partial-*"))
    assert not list(tmp_path.glob("run.interrupted"))


# --- configs -----------------------------------------------------------------------------

def _set(path: str, value: object) -> Callable[[Config], None]:
    """A mutation setting ``a.b.0.c`` to ``value`` (creating mappings on the way)."""
    def mutate(config: Config) -> None:
        node: Any = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
    return mutate


CONFIG_CASES: list[tuple[str, Callable[[Config], None], list[str]]] = [
    ("unknown-top-key", _set("colour", "red"), ["unknown key 'colour'"]),
    ("unknown-section-key", _set("policy.algoritm", "ppo"),
     ["policy", "unknown key 'algoritm'", "did you mean 'algorithm'"]),
    ("unknown-persona-key", _set("personas.0.atributes", {}), ["personas.0", "'atributes'"]),
    ("unknown-trait-key", _set("personas.1.traits.propensty", 0.1), ["personas.1.traits",
                                                                     "'propensty'"]),
    ("unknown-campaign-key", _set("campaigns.1.prise", 3), ["campaigns.1", "'prise'"]),
    ("unknown-deep-key", _set("dynamics.influence.network.generatr", "x"),
     ["dynamics.influence.network", "'generatr'"]),
    ("size-not-a-number", _set("population.size", "many"), ["population.size"]),
    ("seed-a-list", _set("seed", [1, 2]), ["seed"]),
    ("cost-a-word", _set("campaigns.0.cost", "cheap"), ["campaigns.0.cost"]),
    ("personas-a-mapping", _set("personas", {"a": 1}), ["personas"]),
    ("negative-population", _set("population.size", -5), ["population.size"]),
    ("negative-sample", _set("ab_test.sample_size", -1), ["ab_test.sample_size"]),
    ("negative-timesteps", _set("policy.total_timesteps", -64), ["policy.total_timesteps"]),
    ("negative-draws", _set("inference.draws", -10), ["inference.draws"]),
    ("zero-horizon", _set("simulation.horizon", 0), ["simulation.horizon"]),
    ("shares-over-one", _set("personas.0.share", 0.9), ["share", "sum to 1"]),
    ("unknown-engine", _set("simulation.engine", "mesa2"), ["simulation.engine", "mesa2"]),
    ("unknown-response-model", _set("simulation.response_model", "logitt"),
     ["simulation.response_model", "logitt"]),
    ("unknown-graph", _set("dynamics.influence.network.generator", "smallworld"),
     ["dynamics.influence.network.generator", "smallworld"]),
    ("unknown-estimator", _set("inference.estimator", "bayes"), ["inference.estimator", "bayes"]),
    ("unknown-algorithm", _set("policy.algorithm", "ppo2"), ["policy.algorithm", "did you mean"]),
    ("unknown-baseline", _set("policy.baselines", ["random", "rnadom"]),
     ["policy.baselines", "rnadom"]),
    ("unknown-output-format", _set("output.formats", ["csv", "xlsx"]),
     ["output.formats", "xlsx"]),
    ("unknown-dataset", lambda c: (c.clear(), c.update(name="d", dataset={"name": "hilstrom"})),
     ["dataset.name", "hilstrom"]),
    ("negative-plan-budget", _set("plan.budget", -1), ["plan.budget"]),
    ("week-over-horizon", lambda c: c.update(plan={"max_per_week": 3, "max_per_horizon": 2}),
     ["plan.max_per_horizon (2)"]),
    ("capacity-unknown-campaign", _set("plan.capacity", {"nope": 3}), ["plan.capacity", "nope"]),
    ("quiet-week-after-horizon", _set("plan.quiet_weeks", [99]), ["plan.quiet_weeks"]),
    ("event-unknown-persona", _set("dynamics.events", [
        {"name": "sale", "start_week": 1, "end_week": 2, "personas": ["ghosts"]}]),
     ["events.0.personas", "ghosts"]),
    ("event-ends-first", _set("dynamics.events", [
        {"name": "sale", "start_week": 3, "end_week": 2}]), ["dynamics.events.0", "end_week"]),
    ("missing-data-file", _set("data.recipients", "absent.csv"),
     ["data.recipients", "absent.csv"]),
]


@pytest.mark.parametrize(("mutate", "needles"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(tmp_path: Path, mutate: Callable[[Config], None],
                    needles: list[str]) -> None:
    payload = copy.deepcopy(TINY_CONFIG)
    mutate(payload)
    config = write_yaml(tmp_path / "bad.yaml", payload)
    refused_everywhere(tmp_path, config, [], [str(config), *needles])


RAW_CONFIGS: list[tuple[str, bytes, list[str]]] = [
    ("latin-1", "name: café\nseed: 1\n".encode("latin-1"), ["not UTF-8", "0xe9"]),
    ("utf-16", "name: x\nseed: 1\n".encode("utf-16"), ["not UTF-8"]),
    ("binary", bytes(range(256)), ["not UTF-8"]),
    ("nul-bytes", b"name: a\x00\nseed: 1\n", ["not valid YAML"]),
    ("missing-colon", b"name: a\nseed 1\npolicy: {}\n", ["line 2", "not valid YAML"]),
    ("unclosed-bracket", b"name: a\npolicy: {baselines: [random\n", ["line 2", "not valid YAML"]),
    ("duplicate-key", b"name: a\nseed: 1\nname: b\n", ["line 3", "duplicate key 'name'"]),
    ("empty", b"", ["config file is empty"]),
    ("a-list", b"- name: a\n", ["top level must be a mapping"]),
    ("a-scalar", b"just words\n", ["top level must be a mapping"]),
]


@pytest.mark.parametrize(("payload", "needles"), [c[1:] for c in RAW_CONFIGS],
                         ids=[c[0] for c in RAW_CONFIGS])
def test_config_bytes(tmp_path: Path, payload: bytes, needles: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(payload)
    refused_everywhere(tmp_path, config, [], [str(config), *needles])


def test_missing_config_file(tmp_path: Path) -> None:
    refused_everywhere(tmp_path, tmp_path / "nope.yaml", [], ["nope.yaml", "not found"])


SET_CASES: list[tuple[str, list[str], list[str]]] = [
    ("no-equals", ["--set", "policy.algorithm"], ["--set policy.algorithm", "key.path=value"]),
    ("bad-yaml", ["--set", "policy.baselines=[random"], ["--set policy.baselines",
                                                         "not valid YAML"]),
    ("bad-yaml-mapping", ["--set", "plan.capacity={sale: 1"], ["--set plan.capacity",
                                                               "not valid YAML"]),
    ("into-a-number", ["--set", "seed.value=1"], ["--set seed.value", "cannot set"]),
    ("past-a-list", ["--set", "campaigns.9.cost=1"], ["--set campaigns.9.cost",
                                                      "cannot descend into '9'"]),
    ("unknown-key", ["--set", "policy.colour=red"], ["policy", "unknown key 'colour'"]),
    ("wrong-type", ["--set", "population.size=lots"], ["population.size"]),
    ("second-set-bad", ["--set", "seed=4", "--set", "inference.draws=-3"], ["inference.draws"]),
]


@pytest.mark.parametrize(("extra", "needles"), [c[1:] for c in SET_CASES],
                         ids=[c[0] for c in SET_CASES])
def test_bad_set_option(tmp_path: Path, tiny_config_path: Path, extra: list[str],
                        needles: list[str]) -> None:
    refused_everywhere(tmp_path, tiny_config_path, extra, [str(tiny_config_path), *needles])


# --- data files --------------------------------------------------------------------------

RECIPIENTS = ("recipient_id,age,region,consent\nr1,30,urban,true\nr2,45,rural,false\n"
              "r3,52,rural,true\nr4,28,urban,true\n")
CAMPAIGNS = "campaign_id,value,cost,control\nmail,10,0.1,false\nnone,0,0,true\n"
AB = "recipient_id,campaign_id,outcome\nr1,mail,1\nr2,none,0\nr3,mail,0\nr4,none,1\n"
COUNTS = ("segment,campaign_id,exposures,responses\ndeal_seekers,sale,100,9\n"
          "loyal,news,80,7\nloyal,holdout,50,1\n")
EVENTS = "name,start_week,end_week,propensity_shift\nsale_week,1,2,0.3\n"
DATA_FILES = {"recipients.csv": RECIPIENTS, "campaigns.csv": CAMPAIGNS, "ab.csv": AB}


def data_mode(tmp_path: Path, files: dict[str, str | bytes], extra: Config | None = None) -> Path:
    """A data-mode config over ``DATA_FILES`` with ``files`` replacing or adding some."""
    for name, content in (DATA_FILES | files).items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    config: Config = {"name": "data", "seed": 1,
                      "data": {"recipients": "recipients.csv", "campaigns": "campaigns.csv",
                               "ab_results": "ab.csv"}}
    return write_yaml(tmp_path / "exp.yaml", _merge(config, extra or {}))


def _merge(base: Config, extra: Config) -> Config:
    for key, value in extra.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def _rows(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


DATA_CASES: list[tuple[str, dict[str, str | bytes], Config, list[str]]] = [
    # recipients
    ("no-id-column", {"recipients.csv": _rows(RECIPIENTS, "recipient_id,", "customer,")}, {},
     ["recipients.csv", "'recipient_id'"]),
    ("duplicate-id", {"recipients.csv": _rows(RECIPIENTS, "r3,52", "r2,52")}, {},
     ["recipients.csv", "row 3", "r2"]),
    ("blank-id", {"recipients.csv": _rows(RECIPIENTS, "r3,52", ",52")}, {},
     ["recipients.csv", "row 3"]),
    ("only-ids", {"recipients.csv": "recipient_id\nr1\nr2\nr3\nr4\n"}, {},
     ["recipients.csv", "no attribute columns"]),
    ("ids-and-consent", {"recipients.csv": "recipient_id,consent\nr1,true\nr2,false\n"
                                           "r3,true\nr4,true\n"}, {},
     ["recipients.csv", "no attribute columns"]),
    ("bad-consent", {"recipients.csv": _rows(RECIPIENTS, "r2,45,rural,false", "r2,45,rural,maybe")},
     {}, ["recipients.csv", "row 2", "consent", "maybe"]),
    ("constant-attribute", {"recipients.csv": _rows(RECIPIENTS, "urban", "rural")}, {},
     ["recipients.csv", "column 'region'", "constant"]),
    ("stray-text-in-numbers", {"recipients.csv": _rows(RECIPIENTS, "r3,52", "r3,n/a")}, {},
     ["recipients.csv", "row 3, column 'age'", "'n/a'"]),
    ("blank-attribute", {"recipients.csv": _rows(RECIPIENTS, "r3,52,rural", "r3,52,")}, {},
     ["recipients.csv", "row 3, column 'region'", "missing value"]),
    ("too-many-levels", {"recipients.csv": "recipient_id,age,code\nr1,30,a\nr2,45,b\nr3,52,c\n"
                                           "r4,28,d\n"}, {"data": {"max_levels": 3}},
     ["recipients.csv", "column 'code'", "data.max_levels=3"]),
    ("consent-unused-channel", {"recipients.csv": RECIPIENTS.replace(
        "consent\n", "consent,consent_fax\n").replace("true\n", "true,true\n").replace(
        "false\n", "false,true\n")}, {}, ["recipients.csv", "consent_fax", "no campaign uses"]),
    ("semicolons", {"recipients.csv": RECIPIENTS.replace(",", ";")}, {},
     ["recipients.csv", "semicolon-separated"]),
    ("empty-recipients", {"recipients.csv": ""}, {}, ["recipients.csv", "empty"]),
    ("header-only", {"recipients.csv": "recipient_id,age\n"}, {}, ["recipients.csv", "empty"]),
    ("not-a-table-suffix", {"recipients.txt": RECIPIENTS}, {"data": {"recipients":
                                                                     "recipients.txt"}},
     ["recipients.txt", "unsupported file type"]),
    ("recipients-latin-1", {"recipients.csv": "recipient_id,city\nr1,Orléans\nr2,Paris\n"
                            .encode("latin-1")}, {},
     ["recipients.csv", "line 2", "not UTF-8", "0xe9"]),
    ("recipients-utf-16", {"recipients.csv": RECIPIENTS.encode("utf-16")}, {},
     ["recipients.csv", "line 1", "not UTF-8", "0xff"]),
    ("recipients-binary", {"recipients.csv": bytes(range(256)) * 4}, {},
     ["recipients.csv", "could not read"]),
    ("two-recipients", {"recipients.csv": "recipient_id,age,region\nr1,30,urban\nr2,45,rural\n",
                        "ab.csv": "recipient_id,campaign_id,outcome\nr1,mail,1\nr2,none,0\n"},
     {}, ["recipients.csv", "cannot synthesize personas", "too few distinct rows"]),
    # A/B results
    ("outcome-two", {"ab.csv": _rows(AB, "r3,mail,0", "r3,mail,2")}, {},
     ["ab.csv", "row 3", "'2'"]),
    ("ab-unknown-campaign", {"ab.csv": _rows(AB, "r3,mail", "r3,mial")}, {},
     ["ab.csv", "row 3", "mial"]),
    ("ab-unknown-recipient", {"ab.csv": _rows(AB, "r3,mail", "r9,mail")}, {},
     ["ab.csv", "row 3", "r9"]),
    ("ab-no-outcome", {"ab.csv": _rows(AB, "outcome", "result")}, {}, ["ab.csv", "'outcome'"]),
    ("ab-bad-propensity", {"ab.csv": AB.replace("outcome\n", "outcome,propensity\n").replace(
        "1\n", "1,0.5\n").replace("0\n", "0,1.5\n")}, {}, ["ab.csv", "propensity", "(0, 1]"]),
    # campaigns
    ("campaigns-no-cost", {"campaigns.csv": "campaign_id,value\nmail,10\nnone,0\n"}, {},
     ["campaigns.csv", "'cost'"]),
    ("campaigns-bad-value", {"campaigns.csv": _rows(CAMPAIGNS, "mail,10", "mail,ten")}, {},
     ["campaigns.csv", "row 1", "value"]),
    ("campaigns-duplicate", {"campaigns.csv": _rows(CAMPAIGNS, "none,0,0,true", "mail,0,0,true")},
     {}, ["campaigns.csv", "row 2", "mail"]),
    ("campaigns-bad-control", {"campaigns.csv": _rows(CAMPAIGNS, "0,true", "0,maybe")}, {},
     ["campaigns.csv", "row 2", "control"]),
    ("campaigns-negative-cost", {"campaigns.csv": _rows(CAMPAIGNS, "10,0.1", "10,-0.1")}, {},
     ["campaigns.csv", "row 1", "cost"]),
    # events
    ("events-unknown-column", {"events.csv": EVENTS.replace("propensity_shift", "shift")},
     {"dynamics": {"events_file": "events.csv"}}, ["events.csv", "column 'shift'"]),
    ("events-ends-first", {"events.csv": _rows(EVENTS, "1,2,", "3,2,")},
     {"dynamics": {"events_file": "events.csv"}}, ["events.csv", "row 1", "end_week"]),
    ("events-no-name", {"events.csv": "start_week,end_week\n1,2\n"},
     {"dynamics": {"events_file": "events.csv"}}, ["events.csv", "'name'"]),
    ("events-week-a-word", {"events.csv": _rows(EVENTS, "1,2,", "soon,2,")},
     {"dynamics": {"events_file": "events.csv"}}, ["events.csv", "row 1", "start_week"]),
]


@pytest.mark.parametrize(("files", "extra", "needles"), [c[1:] for c in DATA_CASES],
                         ids=[c[0] for c in DATA_CASES])
def test_bad_data_file(tmp_path: Path, files: dict[str, str | bytes], extra: Config,
                       needles: list[str]) -> None:
    refused_everywhere(tmp_path, data_mode(tmp_path, files, extra), [], needles)


COUNT_CASES: list[tuple[str, str, list[str]]] = [
    ("negative-count", _rows(COUNTS, "loyal,news,80,7", "loyal,news,-80,7"),
     ["row 2, column 'exposures'", "negative"]),
    ("more-responses", _rows(COUNTS, "loyal,news,80,7", "loyal,news,8,70"),
     ["row 2, column 'responses'", "exceed exposures"]),
    ("fractional-count", _rows(COUNTS, "100,9", "100,9.5"), ["row 1, column 'responses'",
                                                           "whole number"]),
    ("unknown-campaign", _rows(COUNTS, "loyal,news", "loyal,newz"), ["row 2", "newz"]),
    ("unknown-segment", _rows(COUNTS, "deal_seekers", "bargain"), ["row 1", "bargain"]),
    ("no-exposures-column", _rows(COUNTS, "exposures", "sent"), ["'exposures'"]),
]


@pytest.mark.parametrize(("counts", "needles"), [c[1:] for c in COUNT_CASES],
                         ids=[c[0] for c in COUNT_CASES])
def test_bad_ab_counts(tmp_path: Path, counts: str, needles: list[str]) -> None:
    (tmp_path / "counts.csv").write_text(counts)
    payload = copy.deepcopy(TINY_CONFIG) | {"data": {"ab_counts": "counts.csv"},
                                            "ab_test": {"source": "file"}}
    config = write_yaml(tmp_path / "exp.yaml", payload)
    refused_everywhere(tmp_path, config, [], ["counts.csv", *needles])


# --- rank and plan against a damaged run ---------------------------------------------------

NEW_RECIPIENTS = "recipient_id,age,region\nn1,30,urban\nn2,50,rural\n"


class _Payload:
    """Unpickling this opens (creates) ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def _garbage(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text("garbage: [{")


def _remove(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


def _pickled_posterior(run: Path) -> None:
    (run / "posterior.npz").write_bytes(pickle.dumps(_Payload(run.parent / "pwned")))


def _reshaped_posterior(run: Path) -> None:
    import numpy as np

    np.savez(run / "posterior.npz", draws=np.zeros((4, 5, 6), np.float32),
             persona_ids=np.array(["a"]), campaign_ids=np.array(["x"]))


def _bad_yaml_values(run: Path) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["prioritization"] = {"top_n": "many"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))


DAMAGE: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("posterior-garbage", _garbage("posterior.npz"), ["posterior"]),
    ("posterior-pickle", _pickled_posterior, ["posterior"]),
    ("posterior-shapes", _reshaped_posterior, ["posterior.npz", "draws"]),
    ("posterior-no-diagnostics", _remove("posterior_diagnostics.json"),
     ["posterior_diagnostics.json", "not found"]),
    ("diagnostics-garbage", _garbage("posterior_diagnostics.json"), ["not a saved posterior"]),
    ("config-garbage", _garbage("config.yaml"), ["config.yaml", "damaged run file"]),
    ("config-bad-value", _bad_yaml_values, ["config.yaml", "damaged run file"]),
    ("profiles-garbage", _garbage("profiles.json"), ["profiles.json", "damaged run file"]),
    ("campaigns-garbage", _garbage("campaigns.yaml"), ["campaigns.yaml", "damaged run file"]),
    ("no-posterior", _remove("posterior.npz"), ["posterior.npz", "not a finished"]),
    ("no-profiles", _remove("profiles.json"), ["profiles.json", "not a finished"]),
    ("no-config", _remove("config.yaml"), ["config.yaml", "not a finished"]),
]


@pytest.fixture(scope="module")
def run_copy_source(tiny_run: Path) -> Path:
    return tiny_run


@pytest.mark.parametrize("command", ["rank", "plan"])
@pytest.mark.parametrize(("damage", "needles"), [c[1:] for c in DAMAGE],
                         ids=[c[0] for c in DAMAGE])
def test_damaged_run(tiny_run: Path, tmp_path: Path, command: str,
                     damage: Callable[[Path], None], needles: list[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("tensorboard", "*.png"))
    damage(run)
    (tmp_path / "new.csv").write_text(NEW_RECIPIENTS)
    out = tmp_path / "out.csv"
    result = invoke(command, "--run", run, "--recipients", tmp_path / "new.csv", "--out", out)
    one_line_error(result, str(run), *needles)
    assert not out.exists() and not (tmp_path / "out_holdout.csv").exists()
    assert not (tmp_path / "pwned").exists()


def test_plan_with_damaged_personas(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("tensorboard", "*.png"))
    (run / "personas_posterior.yaml").write_text("- {id: [}")
    (tmp_path / "new.csv").write_text(NEW_RECIPIENTS)
    out = tmp_path / "plan.csv"
    result = invoke("plan", "--run", run, "--recipients", tmp_path / "new.csv", "--out", out)
    one_line_error(result, "personas_posterior.yaml", "damaged run file")
    assert not out.exists()


RECIPIENT_PROBLEMS: list[tuple[str, str | None, str, list[str]]] = [
    ("no-feature-column", "recipient_id,region\nn1,urban\n", "out.csv", ["new.csv", "age"]),
    ("duplicate-ids", "recipient_id,age,region\nn1,30,urban\nn1,50,rural\n", "out.csv",
     ["new.csv", "row 2", "n1"]),
    ("missing-file", None, "out.csv", ["new.csv", "not found"]),
    ("bad-output-suffix", NEW_RECIPIENTS, "out.xlsx", ["out.xlsx", ".csv"]),
    ("stray-text", "recipient_id,age,region\nn1,30,urban\nn2,n/a,rural\nn3,40,urban\n",
     "out.csv", ["new.csv", "row 2, column 'age'", "'n/a'"]),
]


@pytest.mark.parametrize("command", ["rank", "plan"])
@pytest.mark.parametrize(("recipients", "out_name", "needles"),
                         [c[1:] for c in RECIPIENT_PROBLEMS],
                         ids=[c[0] for c in RECIPIENT_PROBLEMS])
def test_bad_recipients_for_a_finished_run(tiny_run: Path, tmp_path: Path, command: str,
                                           recipients: str | None, out_name: str,
                                           needles: list[str]) -> None:
    if recipients is not None:
        (tmp_path / "new.csv").write_text(recipients)
    out = tmp_path / out_name
    result = invoke(command, "--run", tiny_run, "--recipients", tmp_path / "new.csv",
                    "--out", out)
    one_line_error(result, *needles)
    assert not out.exists() and not list(tmp_path.glob("*holdout*"))
