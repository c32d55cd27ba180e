"""The quickstart's prioritization table, byte for byte, as recorded before the layout change.

Only the stages the table depends on run (inputs, A/B test, Bayesian update, ranking), so the
check costs the Bayesian update and not the whole quickstart. A change that alters the table
on purpose records the new hash here and says why in its commit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from personasim.config.loading import load_config
from personasim.core.interrupts import StopFlag
from personasim.core.run_layout import PRIORITIZATION_CSV, PRIORITIZATION_STEM
from personasim.experiments.stage import RunContext
from personasim.experiments.stages import ab_test, inference, inputs, ranking
from personasim.outputs.writers import export_table

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_TABLE_SHA256 = "78893efd974434353237fef173a2942f89bbb404d088276bfc6a0baef5a07aea"
"""sha256 of ``prioritization.csv`` from ``personasim run configs/quickstart.yaml`` (seed 42)."""


def test_quickstart_table_is_byte_identical(tmp_path: Path) -> None:
    path = ROOT / "configs" / "quickstart.yaml"
    # the further A/B waves only report convergence; the table does not read them
    ctx = RunContext(load_config(path, ["ab_test.waves=0"]), str(path), tmp_path, StopFlag())

    def nothing(done: int) -> None:
        return None

    loaded = inputs.run(ctx, nothing)
    ab = ab_test.run(ctx, nothing, loaded)
    bayes = inference.run(ctx, nothing, loaded, ab)
    table = ranking.run(ctx, nothing, loaded, bayes.posterior).table
    export_table(table, tmp_path, PRIORITIZATION_STEM, ["csv"])
    digest = hashlib.sha256(PRIORITIZATION_CSV.path(tmp_path).read_bytes()).hexdigest()
    assert digest == QUICKSTART_TABLE_SHA256
