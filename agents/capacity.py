"""Memory capacity: estimate what a simulation will hold before allocating any of it.

The estimate is per recipient, from the number of campaigns and the influence graph's mean
degree, with constants measured on CPython 3.11 / NumPy 2 (``benchmarks/bench_simulation.py``
reports the measured values next to the estimate). A config that would not fit in the memory
the machine has available fails up front with a one-line :class:`ConfigError` instead of
being killed halfway through a run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from personasim.config.schema import ExperimentConfig
from personasim.config.sections import NetworkConfig
from personasim.core.errors import ConfigError

logger = logging.getLogger(__name__)

GIB = 2**30

BASE_BYTES = 1 * GIB
"""A run's fixed cost: interpreter, PyMC/PyTensor, PyTorch and SB3 loaded."""

SAFETY = 1.3
"""Margin on the per-recipient estimate (allocator slack, temporaries, short-lived copies)."""

COHORT_FIXED = 60
"""Cohort engine bytes per recipient besides the traits and the graph: fatigue, response and
exposure flags, influence share, draw and operator buffers, per-step float32 temporaries."""

PER_RECIPIENT_FIXED = 2000
"""Per-recipient engine bytes per recipient: the Mesa agent, its dict, its length-1 arrays
and its registration in the model's agent sets."""

PER_RECIPIENT_NEIGHBOUR = 40
"""Per-recipient engine bytes per neighbour: a list slot and a boxed float weight."""

CSR_PER_EDGE = 8
"""Bytes per stored (directed) edge of the float32 CSR adjacency with int32 indices."""

NX_PER_NODE = 450
NX_PER_EDGE = 95
"""networkx graph while it is generated: bytes per node and per unit of mean degree (a
dict entry in each endpoint's adjacency); freed once converted to CSR."""

OUTPUT_PER_RECIPIENT = 500
OUTPUT_PER_ROW = 520
"""Run outputs: the audience table per recipient, the prioritization table per recipient x
sendable campaign (pandas, CSV and Parquet writers)."""

ENGINE_FIXED = {"cohort": COHORT_FIXED, "per_recipient": PER_RECIPIENT_FIXED}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of a simulation (and optionally of a whole run).

    Attributes
    ----------
    n_recipients
        Recipients simulated.
    state
        Simulation state per recipient: traits, state arrays and the graph.
    graph_build
        Transient per recipient while networkx generates the graph (0 when read from a file
        or without influence).
    output
        Per recipient for a run's audience and prioritization tables (0 for a bare
        simulation).
    base
        Fixed bytes.
    """

    n_recipients: int
    state: float
    graph_build: float
    output: float
    base: float

    @property
    def per_recipient(self) -> float:
        """Peak bytes per recipient, safety margin included."""
        return SAFETY * (self.state + self.graph_build + self.output)

    @property
    def total(self) -> float:
        """Peak bytes in all."""
        return self.base + self.per_recipient * self.n_recipients


def estimate_memory(
    n_recipients: int,
    n_campaigns: int,
    mean_degree: float,
    engine: str = "cohort",
    generated_graph: bool = True,
    output_rows_per_recipient: int = 0,
    base: float = 0.0,
) -> MemoryEstimate:
    """Estimate the memory a simulation of ``n_recipients`` needs.

    Parameters
    ----------
    n_recipients
        Recipients simulated.
    n_campaigns
        Campaigns, control included (one float32 base logit per recipient each).
    mean_degree
        Mean number of neighbours in the influence graph (0: no influence).
    engine
        Registered engine name; unknown engines are costed like ``per_recipient``.
    generated_graph
        Whether networkx generates the graph (its transient cost is added).
    output_rows_per_recipient
        Prioritization rows per recipient (sendable campaigns) when a whole run is costed.
    base
        Fixed bytes to add.
    """
    traits = 4 * n_campaigns + 16
    graph = CSR_PER_EDGE * mean_degree + (8 if mean_degree > 0 else 0)
    fixed = ENGINE_FIXED.get(engine, PER_RECIPIENT_FIXED)
    state = traits + fixed + graph
    if engine != "cohort":
        state += PER_RECIPIENT_NEIGHBOUR * mean_degree
    build = NX_PER_NODE + NX_PER_EDGE * mean_degree if generated_graph and mean_degree > 0 else 0
    output = 0.0
    if output_rows_per_recipient:
        output = OUTPUT_PER_RECIPIENT + OUTPUT_PER_ROW * output_rows_per_recipient
    return MemoryEstimate(int(n_recipients), float(state), float(build), output, float(base))


def mean_degree(network: NetworkConfig, n_recipients: int) -> float:
    """The influence graph's expected mean degree, from its generator's parameters.

    An edge-list file is costed from its line count; an unknown generator from a ``k``,
    ``mean_degree`` or ``m`` parameter if it has one, else 6.
    """
    n = max(int(n_recipients), 1)
    if network.file is not None:
        return 2.0 * max(_count_lines(network.file) - 1, 0) / n
    params = network.params
    name = network.generator
    if name == "none":
        return 0.0
    if name == "barabasi_albert" or ("m" in params and "k" not in params):
        return float(min(2 * float(params.get("m", 3)), n - 1))
    if name == "erdos_renyi" or "mean_degree" in params:
        return float(min(float(params.get("mean_degree", 6)), n - 1))
    return float(min(float(params.get("k", 6)), n - 1))


def available_memory() -> int | None:
    """Bytes of memory this process can still use, or ``None`` when it cannot be read.

    The smaller of ``MemAvailable`` in ``/proc/meminfo`` (or ``os.sysconf`` available pages)
    and the room left under a cgroup memory limit.
    """
    candidates: list[int] = []
    meminfo = _meminfo_available()
    if meminfo is not None:
        candidates.append(meminfo)
    else:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    room = _cgroup_room()
    if room is not None:
        candidates.append(room)
    return min(candidates) if candidates else None


def check_capacity(
    config: ExperimentConfig,
    n_recipients: int,
    source: str,
    n_campaigns: int | None = None,
    available: int | None = None,
    location: str = "population.size",
) -> MemoryEstimate:
    """Fail before allocating when a run of ``config`` would not fit in memory.

    Parameters
    ----------
    config
        The experiment config (engine, graph, campaigns).
    n_recipients
        Recipients the run will simulate and rank.
    source
        The config file, for the error message.
    n_campaigns
        Campaigns (control included); default: the config's.
    available
        Bytes available; default :func:`available_memory` (the check is skipped when that
        cannot be read).
    location
        The config field named in the error.

    Raises
    ------
    ConfigError
        One line naming ``location``, the estimate and the memory available.
    """
    campaigns = config.campaigns
    n_campaigns = n_campaigns if n_campaigns is not None else max(len(campaigns), 1)
    sendable = max(sum(not c.control for c in campaigns), 1) if campaigns else n_campaigns
    influence = config.dynamics.influence
    degree = mean_degree(influence.network, n_recipients) if (
        influence.enabled and influence.weight > 0) else 0.0
    estimate = estimate_memory(
        n_recipients, n_campaigns, degree, config.simulation.engine,
        generated_graph=influence.network.file is None,
        output_rows_per_recipient=sendable, base=BASE_BYTES,
    )
    available = available if available is not None else available_memory()
    logger.debug("memory estimate %.2f GiB for %d recipients (available: %s)",
                 estimate.total / GIB, n_recipients, available)
    if available is not None and estimate.total > available:
        raise ConfigError(
            source, location,
            f"{n_recipients:,} recipients need about {estimate.total / GIB:,.1f} GiB "
            f"(~{estimate.per_recipient:,.0f} bytes each with the "
            f"{config.simulation.engine!r} engine, mean graph degree {degree:g}) but only "
            f"{available / GIB:,.1f} GiB of memory is available; lower {location}",
        )
    return estimate


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 or v1 memory limit (``None``: no limit found)."""
    pairs = [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ]
    for limit_path, usage_path in pairs:
        try:
            limit_text = Path(limit_path).read_text().strip()
            usage = int(Path(usage_path).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**60:
            return None
        return max(int(limit_text) - usage, 0)
    return None


def _count_lines(path: Path) -> int:
    """Newline-terminated lines in a file, read in 1 MiB blocks."""
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
    return count
