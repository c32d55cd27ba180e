"""The wheel installs everything under ``personasim`` and no generic top-level module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_the_personasim_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("personasim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"personasim", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("envs/campaign_env.py", "agents/model.py", "experiments/runner.py"):
        assert f"personasim/{module}" in names
    assert "personasim/py.typed" in names
    assert "personasim/config/scenarios/quickstart.yaml" in names
    shipped = {name.rsplit("/", 1)[0] for name in names if name.endswith("/__init__.py")}
    assert shipped == _source_packages(), "a subpackage is missing from pyproject's packages"


def _source_packages() -> set[str]:
    """Every package folder of the source tree, as its path inside the wheel."""
    found = set()
    for top, inside in (("personasim", "personasim"), ("agents", "personasim/agents"),
                        ("envs", "personasim/envs"), ("experiments", "personasim/experiments")):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(str(Path(inside) / init.parent.relative_to(ROOT / top)).rstrip("/."))
    return found


def test_mapped_subpackages_import_under_personasim() -> None:
    import personasim.agents
    import personasim.envs
    import personasim.experiments

    for package in (personasim.agents, personasim.envs, personasim.experiments):
        assert package.__name__.startswith("personasim.")
