"""The ``personasim`` command line: run, rank and validate experiment configs."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from personasim.core.errors import PersonasimInputError
from personasim.core.registry import UnknownNameError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Test marketing campaigns on a simulated persona audience.")
console = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line
stdout = Console(soft_wrap=True)
INPUT_ERROR = 2


def _version(show: bool) -> None:
    if show:
        stdout.print(f"personasim {metadata.version('personasim')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Test marketing campaigns on a simulated persona audience."""

OutOption = Annotated[
    Path | None, typer.Option(help="Run directory (default runs/<name>-<time>).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: key.path=value (the value is YAML, "
                 "e.g. --set inference.draws=500). Repeat --set for several values."),
]


class RichReporter:
    """Shows each stage with a spinner, or a progress bar when its size is known."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[object]:
        """Show a spinner (or a bar out of ``total``) while the stage runs."""
        if self.quiet:
            yield lambda done: None
            return
        columns = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        start = time.perf_counter()
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(title, total=total)
            yield lambda done: progress.update(task, completed=done)
        console.print(f"[green]✓[/] {title} [dim]({time.perf_counter() - start:.1f}s)[/]")


@contextmanager
def _input_errors() -> Iterator[None]:
    """Turn bad input into one line on stderr and exit code 2, with no traceback."""
    try:
        yield
    except PersonasimInputError as exc:
        console.print(f"[bold red]error:[/] {escape(exc.one_line())}", highlight=False)
        raise typer.Exit(INPUT_ERROR) from None
    except (UnknownNameError, FileExistsError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(INPUT_ERROR) from None


def _quiet_library_warnings() -> None:
    """Hide warnings that say nothing to a personasim user (the library leaves them alone).

    PyTensor warns that it found no BLAS to link its C code against (it still runs, and
    nutpie does not use that path), and ArviZ announces API changes with FutureWarnings.
    """
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                            category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"arviz(\.|$)")


def _setup_logging(verbose: bool) -> None:
    _quiet_library_warnings()
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(message)s", handlers=[handler], force=True)
    for noisy in ("pymc", "pytensor", "numba", "matplotlib", "MESA", "mesa"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextmanager
def _interruptions() -> Iterator[None]:
    """A run stopped by SIGINT/SIGTERM: say where it is kept, exit 128 + signal (130, 143)."""
    from personasim.core.interrupts import RunInterrupted

    try:
        yield
    except (RunInterrupted, KeyboardInterrupt) as exc:
        code = exc.exit_code if isinstance(exc, RunInterrupted) else 130
        kept = getattr(exc, "resume_dir", None)
        where = (f"; progress saved in {kept}: continue with `personasim run --resume {kept}`"
                 if kept is not None else "")
        console.print(f"[bold yellow]interrupted:[/] {exc or 'KeyboardInterrupt'}{where}",
                      highlight=False)
        raise typer.Exit(code) from None


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(help="Experiment config (YAML); omit with --resume.")
    ] = None,
    out: OutOption = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    verbose: Annotated[bool, typer.Option(help="Log at INFO level.")] = False,
    resume: Annotated[Path | None, typer.Option(
        help="Continue an interrupted run folder (RUN.interrupted), with its saved config."
    )] = None,
    prior: Annotated[Path | None, typer.Option(
        help="Start the Bayesian update from an earlier run's posterior (its run directory)."
    )] = None,
) -> None:
    """Run an experiment end to end and write one run directory.

    SIGINT (Ctrl-C) or SIGTERM saves progress and exits with 130 or 143, keeping the run as
    RUN.interrupted; `personasim run --resume RUN.interrupted` finishes it.
    """
    _setup_logging(verbose)
    with _input_errors(), _interruptions():
        from personasim.config.loading import load_config
        from personasim.core.errors import ConfigError
        from personasim.experiments.runner import resume_experiment, run_experiment

        if resume is not None:
            if config is not None or out is not None or set_ or seed is not None or prior:
                raise ConfigError(str(resume), "--resume", "a resumed run keeps its saved "
                                  "config and folder: drop CONFIG, --out, --set, --seed "
                                  "and --prior")
            summary = resume_experiment(resume, reporter=RichReporter(quiet),
                                        overwrite=overwrite)
        else:
            if config is None:
                raise ConfigError("personasim run", None, "give a CONFIG file (or --resume RUN)")
            overrides = list(set_ or []) + ([f"seed={seed}"] if seed is not None else [])
            experiment = load_config(config, overrides)
            if prior is not None:
                experiment.inference.prior_run = _prior_run(prior)
            run_dir = out or Path("runs") / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            summary = run_experiment(experiment, run_dir, config_source=str(config),
                                     reporter=RichReporter(quiet), overwrite=overwrite)
    table = Table(title="Policy evaluation (return per episode, 95% CI)")
    for column in ("policy", "mean_return", "ci_low", "ci_high"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for row in summary.evaluation.itertuples():
        table.add_row(str(row.policy), f"{row.mean_return:,.1f}", f"{row.ci_low:,.1f}",
                      f"{row.ci_high:,.1f}")
    stdout.print(table)
    for warning in summary.manifest.get("diagnostics", {}).get("warnings", []):
        console.print(f"[bold yellow]warning:[/] Bayesian update: {warning}", highlight=False)
    stdout.print(f"{plan_line(summary.manifest['plan'])} Run directory: "
                 f"[bold]{summary.run_dir}[/]")


def plan_line(plan: dict[str, Any]) -> str:
    """The closing line's count of what the plan sends: messages, people and dollars."""
    budget = plan.get("budget")
    of = f" of the ${budget:,.2f} budget" if budget is not None else ""
    weeks = len(plan.get("messages_per_week", {}))
    return (f"Planned {plan['messages']:,} messages to {plan['recipients_messaged']:,} of "
            f"{plan['recipients']:,} recipients over {weeks} week{'s' if weeks != 1 else ''}, "
            f"${plan['spend']:,.2f}{of} ({plan['holdout']:,} held out to measure lift).")


@app.command()
def rank(
    run_dir: Annotated[Path, typer.Option("--run", help="A finished run directory.")],
    recipients: Annotated[Path, typer.Option(
        help="Recipients file (CSV or Parquet): recipient_id, the run's persona attributes, "
             "optional consent and consent_<channel> (see above).")],
    out: Annotated[Path, typer.Option(help="Output table (.csv or .parquet).")],
) -> None:
    """Rank campaigns for a new recipients file with a finished run's posterior.

    The recipients file has one row per recipient and these columns:

    - recipient_id: a unique, non-blank id;
    - the run's persona attributes ("features" in RUN/profiles.json, e.g. age, region);
    - consent (optional; true/false, yes/no, 1/0): false suppresses every campaign;
    - consent_<channel> (optional; same values): consent for a channel the campaigns use.

    Without a consent column everyone has consented. Other columns must have no blanks.
    """
    _setup_logging(False)
    with _input_errors():
        from personasim.experiments.rank import rank_recipients

        table = rank_recipients(run_dir, recipients, out)
    stdout.print(f"Wrote {len(table):,} rows to [bold]{out}[/]")


@app.command()
def plan(
    run_dir: Annotated[Path, typer.Option("--run", help="A finished run directory.")],
    recipients: Annotated[Path, typer.Option(help="Recipients file (CSV or Parquet).")],
    out: Annotated[Path, typer.Option(help="Output plan (.csv or .parquet); the held-out "
                                      "recipients go beside it as <name>_holdout.csv.")],
    budget: Annotated[float | None, typer.Option(
        help="Budget in dollars (default: the run's plan.budget, else simulation.budget).")]
    = None,
) -> None:
    """Plan the messages for a new audience or budget with a finished run (no retraining).

    The run's posterior scores the recipients (recipient_id, the attributes the run used,
    consent and optional consent_<channel> columns); the plan keeps the run's plan settings
    (caps, gaps, quiet weeks, holdout share), its fatigue and its events, week by week.
    """
    _setup_logging(False)
    with _input_errors():
        from personasim.experiments.replan import holdout_path, replan

        result = replan(run_dir, recipients, out, budget)
    stdout.print(f"{plan_line(result.summary)} Wrote [bold]{out}[/] and "
                 f"[bold]{holdout_path(out)}[/].")


def _prior_run(path: Path) -> Path:
    """The absolute folder of an earlier run whose posterior is the prior (checked)."""
    from personasim.bayes.storage import POSTERIOR_FILE
    from personasim.core.errors import DataError

    if not (path / POSTERIOR_FILE).is_file():
        raise DataError(str(path), "--prior", f"not a finished run (no {POSTERIOR_FILE})")
    return path.resolve()


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML).")],
    set_: SetOption = None,
) -> None:
    """Check a config, its plug-in names and its data files without running anything.

    Every registered name (engine, response model, graph generator, synthesis method,
    estimator, algorithms, baselines, output formats, dataset) is checked against its registry,
    third-party plug-ins included; an unknown one is reported as one line naming the file and
    the field, with exit code 2. Imports neither torch, Stable-Baselines3 nor PyMC.
    """
    _setup_logging(False)
    with _input_errors():
        from personasim.config.loading import load_config
        from personasim.experiments.stages.inputs import load_inputs

        experiment = load_config(config, list(set_ or []))
        inputs = load_inputs(  # its preflight checks every plug-in name first
            experiment, str(config), experiment.seed)
    stdout.print(
        f"[green]OK[/] {config}: {len(inputs.personas)} personas, "
        f"{len(inputs.campaigns)} campaigns"
        + (f", {len(inputs.recipients):,} recipients" if inputs.recipients is not None else "")
        + (f", {len(inputs.ab_table):,} A/B rows" if inputs.ab_table is not None else "")
    )


def main() -> None:
    """Entry point for ``python -m personasim``."""
    app()
