"""Saving, loading and tabulating posteriors (the run directory's posterior files)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.bayes.covariates import CovariatePosterior, CovariateSpec
from personasim.bayes.design import Design
from personasim.core.csv_files import write_csv
from personasim.core.errors import DataError
from personasim.core.run_layout import POSTERIOR_NETCDF
from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, ABCounts, Diagnostics, Posterior


def posterior_table(
    posterior: Posterior, counts: ABCounts | None = None, level: float = 0.9
) -> pd.DataFrame:
    """Tabulate the posterior, one row per persona x campaign (persona-major).

    Parameters
    ----------
    posterior
        Posterior response probabilities.
    counts
        The A/B counts behind it, matched by id; without them (or for cells they lack)
        ``exposures`` and ``responses`` are 0 and ``observed_rate`` is NaN.
    level
        Credible level of the equal-tailed ``p_low``-``p_high`` interval.

    Returns
    -------
    pandas.DataFrame
        ``persona_id, campaign_id, mean, p_low, p_high, exposures, responses,
        observed_rate``.
    """
    n_p, n_c = len(posterior.persona_ids), len(posterior.campaign_ids)
    low, high = posterior.interval(level)
    exposures = np.zeros((n_p, n_c), dtype=np.int64)
    responses = np.zeros((n_p, n_c), dtype=np.int64)
    if counts is not None:
        p_index = {pid: j for j, pid in enumerate(counts.persona_ids)}
        c_index = {cid: k for k, cid in enumerate(counts.campaign_ids)}
        for j, pid in enumerate(posterior.persona_ids):
            for k, cid in enumerate(posterior.campaign_ids):
                if pid in p_index and cid in c_index:
                    exposures[j, k] = counts.exposures[p_index[pid], c_index[cid]]
                    responses[j, k] = counts.responses[p_index[pid], c_index[cid]]
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = responses / np.where(exposures > 0, exposures, np.nan)
    return pd.DataFrame(
        {
            PERSONA_ID: np.repeat(np.asarray(posterior.persona_ids, dtype=object), n_c),
            CAMPAIGN_ID: np.tile(np.asarray(posterior.campaign_ids, dtype=object), n_p),
            "mean": posterior.mean().astype(np.float64).ravel(),
            "p_low": low.astype(np.float64).ravel(),
            "p_high": high.astype(np.float64).ravel(),
            "exposures": exposures.ravel(),
            "responses": responses.ravel(),
            "observed_rate": observed.ravel(),
        }
    )


POSTERIOR_FILE = "posterior.npz"
SUMMARY_FILE = "posterior_summary.csv"
DIAGNOSTICS_FILE = "posterior_diagnostics.json"
NETCDF_FILE = POSTERIOR_NETCDF.name


def save_posterior(posterior: Posterior, directory: Path, level: float = 0.9) -> None:
    """Write the posterior files: draws (npz, netCDF), summary (CSV), diagnostics (JSON).

    The files are ``posterior.npz``, ``posterior.nc``, ``posterior_summary.csv`` and
    ``posterior_diagnostics.json``. A
    :class:`~personasim.bayes.covariates.CovariatePosterior` also stores its cell logits,
    covariate slopes and covariate standardization in ``posterior.npz``. ``posterior.nc``
    holds the same draws as ArviZ InferenceData (see :func:`save_inference_data`).

    The summary has ``persona_id, campaign_id, mean, p_low, p_high, sd`` with an
    equal-tailed interval at ``level``. Non-finite diagnostics are written as ``null``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extra: dict[str, np.ndarray] = {}
    if isinstance(posterior, CovariatePosterior):
        extra = {
            "eta": posterior.eta.astype(np.float32),
            "gamma": posterior.gamma.astype(np.float32),
            **_spec_arrays(posterior.spec),
        }
    np.savez_compressed(
        directory / POSTERIOR_FILE,
        draws=posterior.draws.astype(np.float32),
        persona_ids=np.asarray(posterior.persona_ids, dtype=str),
        campaign_ids=np.asarray(posterior.campaign_ids, dtype=str),
        **extra,
    )
    summary = posterior_table(posterior, None, level)[
        [PERSONA_ID, CAMPAIGN_ID, "mean", "p_low", "p_high"]
    ]
    summary["sd"] = posterior.draws.astype(np.float64).std(axis=0).ravel()
    write_csv(summary, directory / SUMMARY_FILE)
    save_inference_data(posterior, directory / NETCDF_FILE)
    # the core Diagnostics fields only: a fit's extras (e.g. compile_seconds) are not stored
    record = {
        field.name: _finite_or_none(getattr(posterior.diagnostics, field.name))
        for field in dataclasses.fields(Diagnostics)
    }
    (directory / DIAGNOSTICS_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")


def inference_data(posterior: Posterior) -> Any:
    """The posterior as ArviZ ``InferenceData`` (one ``posterior`` group).

    ``p_response`` has dims ``(chain, draw, persona, campaign)`` with the persona and campaign
    ids as coordinates; the draws of every chain are pooled in one chain (``posterior.npz``
    does not keep them apart). A covariate posterior adds ``eta`` (cell logits, same dims) and
    ``gamma`` (``(chain, draw, campaign, covariate)`` slopes, labelled by model column). The
    sampler diagnostics are attributes of the group.
    """
    import arviz as az

    coords: dict[str, list[str]] = {"persona": list(posterior.persona_ids),
                                    "campaign": list(posterior.campaign_ids)}
    variables = {"p_response": posterior.draws.astype(np.float32)[None]}
    dims = {"p_response": ["persona", "campaign"]}
    if isinstance(posterior, CovariatePosterior):
        spec = posterior.spec
        coords["covariate"] = spec.labels() if isinstance(spec, Design) else list(spec.names)
        variables |= {"eta": posterior.eta.astype(np.float32)[None],
                      "gamma": posterior.gamma.astype(np.float32)[None]}
        dims |= {"eta": ["persona", "campaign"], "gamma": ["campaign", "covariate"]}
    attrs = {field.name: getattr(posterior.diagnostics, field.name)
             for field in dataclasses.fields(Diagnostics) if field.name != "warnings"}
    attrs["warnings"] = "; ".join(posterior.diagnostics.warnings)
    idata = az.from_dict(posterior=variables, coords=coords, dims=dims)
    idata.posterior.attrs.update(attrs)
    return idata


def save_inference_data(posterior: Posterior, path: Path) -> Path:
    """Write :func:`inference_data` as netCDF (``az.from_netcdf`` opens it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    inference_data(posterior).to_netcdf(str(tmp))
    os.replace(tmp, path)
    return path


def load_posterior(directory: Path) -> Posterior:
    """Read a posterior written by :func:`save_posterior`.

    Raises
    ------
    DataError
        If a file is missing or does not hold a posterior.
    """
    directory = Path(directory)
    npz_path, diag_path = directory / POSTERIOR_FILE, directory / DIAGNOSTICS_FILE
    for path in (npz_path, diag_path):
        if not path.is_file():
            raise DataError(str(path), None, "posterior file not found")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            draws = data["draws"].astype(np.float32)
            persona_ids = tuple(str(x) for x in data["persona_ids"])
            campaign_ids = tuple(str(x) for x in data["campaign_ids"])
            covariates = None
            if "eta" in data.files:
                spec = _read_spec(data)
                covariates = (data["eta"].astype(np.float32), data["gamma"].astype(np.float32),
                              spec)
        record = json.loads(diag_path.read_text(encoding="utf-8"))
        diagnostics = Diagnostics(
            sampler=str(record["sampler"]),
            rhat_max=_float_or_nan(record["rhat_max"]),
            ess_bulk_min=_float_or_nan(record["ess_bulk_min"]),
            divergences=int(record["divergences"]),
            seconds=_float_or_nan(record["seconds"]),
            warnings=[str(w) for w in record.get("warnings", [])],
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise DataError(str(directory), None, f"not a saved posterior ({exc})") from None
    if draws.ndim != 3 or draws.shape[1:] != (len(persona_ids), len(campaign_ids)):
        raise DataError(str(npz_path), "draws", "shape does not match the persona/campaign ids")
    if covariates is not None:
        eta, gamma, spec = covariates
        if eta.shape != draws.shape or gamma.shape != (draws.shape[0], draws.shape[2],
                                                       spec.n_columns):
            raise DataError(str(npz_path), "eta", "covariate draws do not match the draws")
        return CovariatePosterior(persona_ids, campaign_ids, draws, diagnostics, eta, gamma,
                                  spec)
    return Posterior(persona_ids, campaign_ids, draws, diagnostics)


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _spec_arrays(spec: CovariateSpec | Design) -> dict[str, np.ndarray]:
    """How a posterior's covariates are read, as npz arrays (text, no pickles)."""
    if isinstance(spec, Design):
        return {"design": np.asarray(json.dumps(spec.to_dict(), sort_keys=True))}
    return {
        "covariate_names": np.asarray(spec.names, dtype=str),
        "covariate_means": np.asarray(spec.means, dtype=np.float64),
        "covariate_stds": np.asarray(spec.stds, dtype=np.float64),
    }


def _read_spec(data: Any) -> CovariateSpec | Design:
    """Inverse of :func:`_spec_arrays`."""
    if "design" in data.files:
        return Design.from_dict(json.loads(str(data["design"])))
    return CovariateSpec(
        tuple(str(x) for x in data["covariate_names"]),
        tuple(float(x) for x in data["covariate_means"]),
        tuple(float(x) for x in data["covariate_stds"]),
    )
