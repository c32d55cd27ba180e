"""The persona report for a campaign team: one HTML page with a card per persona.

Each card gives the persona's plain-language description, its size, key attributes, the
response rate per arm with its 90% interval (and the held-out customers' observed rate when
the run held some out), and the recommended action with what it is expected to earn. When
the run was evaluated on held-out customers, the page opens with that evaluation and the
uplift plot. The page links PNG figures written beside it; it needs nothing else.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.core import run_layout as files
from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, RECIPIENT_ID, Posterior
from personasim.outputs.evaluation_plots import plot_persona_response
from personasim.ranking.prioritization import TABLE_DRAWS, draw_subset

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;
color:#1d2329;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem}.lead{color:#4a5560;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}
.card{border:1px solid #d5dbe1;border-radius:10px;padding:1rem 1.1rem;background:#fbfcfd}
.card h3{margin:.1rem 0 .3rem}.size{color:#4a5560;font-size:.92rem;margin:0 0 .5rem}
.desc{font-size:1.05rem;margin:.2rem 0 .6rem}
.action{border-radius:6px;padding:.5rem .7rem;margin:.6rem 0}
.send{background:#e3f4e6;border-left:4px solid #2e8b3e}
.skip{background:#f4ece3;border-left:4px solid #b26b16}
table{border-collapse:collapse;font-size:.9rem;margin:.4rem 0}
td,th{padding:.2rem .6rem;border-bottom:1px solid #e4e8ec;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.best td{font-weight:600}img{max-width:100%}.note{color:#4a5560;font-size:.88rem}
.warn{background:#fdf3d8;border-left:4px solid #c9a227;padding:.4rem .7rem}
"""


@dataclass(frozen=True)
class PersonaCard:
    """What one card shows."""

    persona_id: str
    description: str
    size: int
    share: float
    facts: Mapping[str, str]
    arms: pd.DataFrame
    send: bool
    action: str
    detail: str
    plot: str | None = None


@dataclass(frozen=True)
class ReportContext:
    """Run-level text and tables around the cards.

    Attributes
    ----------
    title, intro
        Page heading and the sentence under it.
    outcome
        What a response is, in the plural (``visits``, ``responses``).
    evaluation
        Held-out policy values (``offline_evaluation.csv``), or ``None``.
    sim_to_real
        The sim-to-real table, or ``None``.
    figures
        ``(file name, caption)`` of figures shown after the evaluation.
    labels
        Campaign id -> display name, for policy names.
    self_check
        The posterior's ranking against a T-learner on held-out A/B rows
        (``self_check.csv``), or ``None``.
    plan_html
        The plan's section (:func:`personasim.outputs.plan_report.plan_section`), or ``None``.
    """

    title: str
    intro: str
    outcome: str = "responses"
    evaluation: pd.DataFrame | None = None
    sim_to_real: pd.DataFrame | None = None
    figures: Sequence[tuple[str, str]] = field(default_factory=tuple)
    labels: Mapping[str, str] = field(default_factory=dict)
    self_check: pd.DataFrame | None = None
    plan_html: str | None = None


def _label(campaign: Campaign) -> str:
    return campaign.offer or campaign.id


def persona_cards(personas: list[Persona], posterior: Posterior, campaigns: list[Campaign],
                  sizes: Mapping[str, int], facts: Mapping[str, Mapping[str, str]],
                  plan: pd.DataFrame | None = None, observed: pd.DataFrame | None = None,
                  outcome: str = "responses", level: float = 0.9) -> list[PersonaCard]:
    """Build one card per persona from the posterior and the plan.

    With a plan, the card's action is the plan's: what it sends this persona's customers,
    how many and at what cost. The evidence under it is the posterior's best arm for the
    persona as a whole: ``(P(response | arm) - P(response | control)) * value - cost``
    (``P * value - cost`` without a control) and how often that gain is positive across
    posterior draws. Without a plan the action is that best arm.
    """
    column = {cid: k for k, cid in enumerate(posterior.campaign_ids)}
    row = {pid: j for j, pid in enumerate(posterior.persona_ids)}
    control = next((c for c in campaigns if c.control and c.id in column), None)
    sendable = [c for c in campaigns if not c.control and c.id in column]
    low_q, high_q = (1 - level) / 2, 1 - (1 - level) / 2
    total = max(sum(sizes.values()), 1)
    cards = []
    # the table's draws, so that a card's numbers are the table's (one source)
    subset = draw_subset(posterior.draws.shape[0], TABLE_DRAWS)
    for persona in personas:
        j = row.get(persona.id)
        if j is None:
            continue
        draws = posterior.draws[subset, j, :].astype(np.float64)
        base = draws[:, column[control.id]] if control is not None else 0.0
        arms = pd.DataFrame({
            CAMPAIGN_ID: [c.id for c in campaigns if c.id in column],
            "label": [_label(c) for c in campaigns if c.id in column],
        })
        picked = draws[:, [column[c] for c in arms[CAMPAIGN_ID]]]
        arms["mean"] = picked.mean(axis=0)
        arms["p_low"], arms["p_high"] = np.quantile(picked, [low_q, high_q], axis=0)
        if observed is not None:
            mine = observed[observed[PERSONA_ID] == persona.id].set_index(CAMPAIGN_ID)
            for name in ("observed_rate", "observed_low", "observed_high"):
                arms[name] = arms[CAMPAIGN_ID].map(mine[name]) if name in mine else np.nan
        gains = {c.id: (draws[:, column[c.id]] - base) * c.value - c.cost for c in sendable}
        send, action, detail = _recommend(sendable, gains, draws, column, base, outcome, level)
        size = int(sizes.get(persona.id, 0))
        if plan is not None:
            send, action, planned = _plan_share(plan[plan[PERSONA_ID] == persona.id], size,
                                                campaigns)
            detail = f"{planned} Evidence: {detail}"
        cards.append(PersonaCard(persona.id, persona.description or persona.id, size,
                                 size / total, facts.get(persona.id, {}), arms, send, action,
                                 detail))
    return cards


def _recommend(sendable: list[Campaign], gains: Mapping[str, np.ndarray], draws: np.ndarray,
               column: Mapping[str, int], base: np.ndarray | float, outcome: str,
               level: float) -> tuple[bool, str, str]:
    """``(send?, headline, explanation)`` for one persona."""
    if not sendable:
        return False, "Nothing to send", "No campaign other than the control."
    best = max(sendable, key=lambda c: (float(gains[c.id].mean()), c.id))
    gain = gains[best.id]
    lift = 100 * (draws[:, column[best.id]] - base)
    lo, hi = np.quantile(lift, [(1 - level) / 2, 1 - (1 - level) / 2])
    sure = float((gain > 0).mean())
    words = (f"{_label(best)} adds {lift.mean():+.1f} {outcome} per 100 customers "
             f"({level:.0%} interval {lo:+.1f} to {hi:+.1f}); after its ${best.cost:.2f} "
             f"cost it nets {_money(1000 * gain.mean())} per 1,000 customers, positive in "
             f"{sure:.0%} of posterior draws.")
    if gain.mean() > 0:
        return True, f"Send {_label(best)}", words
    email = all(c.channel == "email" for c in sendable)
    return False, "Do not e-mail" if email else "Send nothing", words


def _plan_share(rows: pd.DataFrame, size: int, campaigns: list[Campaign]
                ) -> tuple[bool, str, str]:
    """``(sends?, headline, sentence)``: what the plan sends one persona's customers."""
    labels = {c.id: _label(c) for c in campaigns}
    email = all(c.channel == "email" for c in campaigns if not c.control)
    if rows.empty:
        return (False, "Do not e-mail" if email else "Send nothing",
                "The plan sends these customers nothing.")
    counts = rows[CAMPAIGN_ID].value_counts()
    top = str(counts.index[0])
    reached = rows[RECIPIENT_ID].nunique()
    weeks = sorted(rows["week"].unique())
    span = f"week {weeks[0]}" if len(weeks) == 1 else f"weeks {weeks[0]}–{weeks[-1]}"
    parts = ", ".join(f"{labels.get(cid, cid)} {n:,}" for cid, n in counts.items())
    share = reached / size if size else 0.0
    return (True, f"Send {labels.get(top, top)}",
            f"The plan sends {len(rows):,} messages ({parts}) to {reached:,} of these "
            f"customers ({share:.0%}) in {span}, for ${rows['cost'].sum():,.2f}.")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _money(x: float) -> str:
    """Signed dollars: ``+$19``, ``-$4``."""
    return f"{'-' if x < 0 else '+'}${abs(x):,.0f}"


def policy_label(name: str, labels: Mapping[str, str]) -> str:
    """Plain name of an evaluated policy (``mens_email_to_all`` -> ``Mens E-Mail to all``)."""
    fixed = {"prioritization_table": "The plan's first message (this run)",
             "first_choice_for_all": "Each customer's first-ranked e-mail, to everyone",
             "t_learner": "T-learner (gradient boosting)", "nothing": "No e-mail to anyone",
             "random": "Random arm per customer"}
    if name in fixed:
        return fixed[name]
    if name.endswith("_to_all"):
        cid = name.removesuffix("_to_all")
        return f"{labels.get(cid, cid)} to all"
    return name.replace("_", " ")


def headline(evaluation: pd.DataFrame, labels: Mapping[str, str],
             metric: str = "net_value") -> str:
    """One sentence: the table's held-out value and its edge over the best arm and T-learner."""
    rows = evaluation[evaluation["metric"] == metric].set_index("policy")
    if "prioritization_table" not in rows.index:
        return ""
    table = rows.loc["prioritization_table"]
    arms = [p for p in rows.index if p.endswith("_to_all") or p == "nothing"]
    text = (f"On held-out customers the plan's first message earns "
            f"${1000 * table['value']:,.0f} net per 1,000 customers (95% interval "
            f"${1000 * table['ci_low']:,.0f}–${1000 * table['ci_high']:,.0f})")
    parts = []
    if arms:
        best = max(arms, key=lambda p: rows.loc[p, "value"])
        parts.append((policy_label(best, labels), rows.loc[best]))
    if "t_learner" in rows.index:
        parts.append((policy_label("t_learner", labels), rows.loc["t_learner"]))
    edges = [f"{_money(1000 * r['table_advantage'])} against {name} (paired 95% interval "
             f"{_money(1000 * r['advantage_low'])} to {_money(1000 * r['advantage_high'])})"
             for name, r in parts]
    return text + (": " + "; ".join(edges) if edges else "") + "."


def _card_html(card: PersonaCard) -> str:
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in card.facts.items())
    has_obs = "observed_rate" in card.arms and card.arms["observed_rate"].notna().any()
    head = "<tr><th>Arm</th><th class=num>Model (90%)</th>" + (
        "<th class=num>Held-out</th>" if has_obs else "") + "</tr>"
    rows = []
    for arm in card.arms.itertuples():
        cells = (f"<td>{e(str(arm.label))}</td><td class=num>{_pct(arm.mean)} "
                 f"({_pct(arm.p_low)}–{_pct(arm.p_high)})</td>")
        if has_obs:
            cells += f"<td class=num>{_pct(arm.observed_rate)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    plot = f'<img src="{e(card.plot)}" alt="response per arm">' if card.plot else ""
    return (f'<div class=card><h3>{e(card.persona_id)}</h3>'
            f'<p class=size>{card.size:,} customers ({100 * card.share:.0f}%)</p>'
            f'<p class=desc>{e(card.description)}</p>'
            f'<div class="action {"send" if card.send else "skip"}"><b>{e(card.action)}</b>'
            f'<br><span class=note>{e(card.detail)}</span></div>'
            f"<table>{facts}</table><table>{head}{''.join(rows)}</table>{plot}</div>")


EVAL_UNITS = {"visit": ("Visits per 1,000", 1000, "{:,.0f}"),
              "conversion": ("Orders per 1,000", 1000, "{:,.1f}"),
              "spend": ("Spend per 1,000", 1000, "${:,.0f}"),
              "net_value": ("Net value per 1,000", 1000, "${:,.0f}")}


def _evaluation_html(evaluation: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """Policies as rows, metrics as columns (value and 95% interval)."""
    metrics = [m for m in EVAL_UNITS if m in set(evaluation["metric"])]
    head = "<tr><th>Policy</th><th class=num>E-mailed</th>" + "".join(
        f"<th class=num>{EVAL_UNITS[m][0]} (95%)</th>" for m in metrics) + "</tr>"
    body = []
    for policy, rows in evaluation.groupby("policy", sort=False):
        by = rows.set_index("metric")
        cells = [f"<td>{html.escape(policy_label(str(policy), labels))}</td>",
                 f"<td class=num>{100 * rows['share_emailed'].iloc[0]:.0f}%</td>"]
        for m in metrics:
            _, scale, fmt = EVAL_UNITS[m]
            v, lo, hi = (scale * float(by.loc[m, c]) for c in ("value", "ci_low", "ci_high"))
            cells.append(f"<td class=num>{fmt.format(v)} ({fmt.format(lo)}–"
                         f"{fmt.format(hi)})</td>")
        best = ' class=best' if policy == "prioritization_table" else ""
        body.append(f"<tr{best}>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _self_check_html(check: pd.DataFrame) -> str:
    """The self-check as a sentence and a small table (net value per 1,000 recipients)."""
    gains = check[check["budget"] > 0].pivot(index="budget", columns="model",
                                             values="gain_per_1000")
    mine = check[(check["model"] == "posterior") & (check["budget"] > 0)]
    rows = "".join(
        f"<tr><td>{100 * budget:.0f}%</td><td>{gains.loc[budget, 'posterior']:,.1f}</td>"
        f"<td>{gains.loc[budget, 't_learner']:,.1f}</td><td>{r.minus_t_learner:+,.1f} "
        f"({r.difference_low:+,.1f} to {r.difference_high:+,.1f})</td></tr>"
        for budget, r in zip(mine["budget"], mine.itertuples(), strict=True))
    return ("<h2>Self-check on held-out A/B recipients</h2><p>Before deciding, the run held "
            "out part of its A/B test, refitted the model on the rest, and ranked the held-out "
            "recipients with it and with a scikit-learn T-learner. Net value gained over "
            "sending nothing, per 1,000 held-out recipients, when the top share is contacted "
            "(difference with its 95% interval):</p><table><tr><th>contacted</th>"
            "<th>this model</th><th>T-learner</th><th>difference</th></tr>"
            f"{rows}</table>")


def render_report(cards: list[PersonaCard], context: ReportContext) -> str:
    """The whole page as an HTML string."""
    e = html.escape
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(context.title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{e(context.title)}</h1>"
             f"<p class=lead>{e(context.intro)}</p>"]
    if context.plan_html:
        parts.append(context.plan_html)
    if context.evaluation is not None:
        parts.append(f"<h2>How the ranking did on held-out customers</h2>"
                     f"<p>{e(headline(context.evaluation, context.labels))}</p>"
                     "<p class=note>Values per 1,000 customers the model never saw, "
                     "estimated by inverse propensity weighting over the randomized arms; "
                     "net value counts the e-mail cost.</p>")
        parts.append(_evaluation_html(context.evaluation, context.labels))
    if context.sim_to_real is not None and len(context.sim_to_real):
        sim = context.sim_to_real
        parts.append(f"<p>Simulation vs reality: {int(sim['inside'].sum())} of {len(sim)} "
                     f"persona × arm cells ({100 * sim['inside'].mean():.0f}%) have their "
                     "held-out response rate inside the simulated 90% interval.</p>")
    if context.self_check is not None:
        parts.append(_self_check_html(context.self_check))
    for name, caption in context.figures:
        parts.append(f'<figure><img src="{e(name)}" alt="{e(caption)}">'
                     f"<figcaption class=note>{e(caption)}</figcaption></figure>")
    parts.append("<h2>Personas</h2><div class=cards>")
    parts += [_card_html(card) for card in cards]
    held_out = ("; held-out rates are observed on customers kept out of training"
                if context.sim_to_real is not None else "")
    parts.append("</div><p class=note>Intervals on model rates are 90% posterior intervals"
                 f"{held_out}.</p></body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, cards: list[PersonaCard], context: ReportContext,
                 plots: bool = True) -> Path:
    """Write ``report.html`` (and a ``card_<persona id>.png`` per card) into ``out``."""
    out = Path(out)
    highs = [card.arms[c].max() for card in cards for c in ("p_high", "observed_high")
             if c in card.arms]
    xmax = 1.1 * float(np.nanmax(highs)) if highs and np.isfinite(highs).any() else None
    with_plots = []
    for card in cards:
        name = None
        if plots:
            name = files.persona_card(out, card.persona_id).name
            plot_persona_response(card.arms, out / name,
                                  f"{card.persona_id}: response per arm", xmax)
        with_plots.append(PersonaCard(**{**card.__dict__, "plot": name}))
    path = files.REPORT.path(out)
    path.write_text(render_report(with_plots, context), encoding="utf-8")
    logger.info("wrote %s", path)
    return path
