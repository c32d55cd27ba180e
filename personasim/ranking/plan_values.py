"""What one more message is worth: the plan's response model with fatigue and events.

The posterior gives each recipient's response probability ``p[i, k]`` to campaign ``k`` as
measured in the A/B test (week 1, no fatigue) and the control rate ``p0[i]``. The simulation's
response logit moves with the week's events and falls with fatigue, so a send of ``k`` to ``i``
in week ``w`` with fatigue ``f[i]`` is worth::

    value[k] * (sigmoid(logit(p[i, k]) + shift[g, w, k] - fatigue_weight * f[i]) - p0[i]) - cost[k]

where ``g`` is the recipient's persona and ``shift`` the change of the week's event effects
from week 1 (propensity shifts, and the discount term scaled by the persona's mean price
sensitivity). Fatigue moves as in the simulation: each week it decays by ``recovery``, and a
week with a message adds the persona's mean fatigue rate (times the week's event multiplier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from personasim.behaviour.transition import EventCalendar
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.sections import DynamicsConfig, EventConfig
from personasim.core.numeric import logit

_CLIP = 1e-6


@dataclass(frozen=True)
class ResponseValues:
    """The marginal net value of a send, given the week and the recipient's fatigue.

    Attributes
    ----------
    logit : np.ndarray
        ``(n, K)`` logit of each recipient's response probability to each campaign (week 1,
        no fatigue).
    p_control : np.ndarray
        ``(n,)`` probability of responding with no message.
    value, cost : np.ndarray
        ``(K,)`` value of a response and cost of a send.
    group : np.ndarray
        ``(n,)`` persona index of each recipient (into the ``(G, ...)`` arrays).
    week_shift : np.ndarray
        ``(G, H, K)`` change of the response logit in each week, from week 1.
    fatigue_rate : np.ndarray
        ``(G, H)`` fatigue a message adds in each week (event multipliers included).
    fatigue_weight, fatigue_recovery : float
        Logit penalty per unit of fatigue, and the share of fatigue lost each week.
    """

    logit: np.ndarray
    p_control: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    group: np.ndarray
    week_shift: np.ndarray
    fatigue_rate: np.ndarray
    fatigue_weight: float = 0.0
    fatigue_recovery: float = 1.0

    def __post_init__(self) -> None:
        n, k = np.shape(self.logit)
        if np.shape(self.p_control) != (n,) or np.shape(self.group) != (n,):
            raise ValueError(f"p_control and group need one entry per recipient ({n})")
        if np.shape(self.value) != (k,) or np.shape(self.cost) != (k,):
            raise ValueError(f"value and cost need one entry per campaign ({k})")
        if np.ndim(self.week_shift) != 3 or np.shape(self.week_shift)[2] != k:
            raise ValueError(f"week_shift must be (groups, weeks, {k}), got "
                             f"{np.shape(self.week_shift)}")
        if np.shape(self.fatigue_rate) != np.shape(self.week_shift)[:2]:
            raise ValueError("fatigue_rate must be (groups, weeks) like week_shift")
        if not (np.all(np.isfinite(self.logit)) and np.all(np.isfinite(self.cost))
                and np.all(np.isfinite(self.value))):
            raise ValueError("logit, value and cost must be finite")
        if np.any(np.asarray(self.cost) < 0) or np.any(np.asarray(self.value) < 0):
            raise ValueError("cost and value must be >= 0")
        if not 0.0 <= self.fatigue_recovery <= 1.0 or self.fatigue_weight < 0:
            raise ValueError("fatigue_recovery must be in [0, 1] and fatigue_weight >= 0")

    @property
    def horizon(self) -> int:
        """Weeks the value model covers."""
        return int(np.shape(self.week_shift)[1])

    def response(self, rows: np.ndarray, week: int, fatigue: np.ndarray) -> np.ndarray:
        """``(len(rows), K)`` P(response) to each campaign in ``week`` at ``fatigue[rows]``."""
        z = np.take(self.logit, rows, axis=0)  # always a copy, worked on in place below
        z += self.week_shift[self.group[rows], week - 1]
        z -= self.fatigue_weight * fatigue[rows][:, None]
        np.negative(z, out=z)  # the logistic function, in place: 1 / (1 + exp(-z))
        np.exp(z, out=z)
        z += 1.0
        return np.reciprocal(z, out=z)

    def marginal(self, rows: np.ndarray, week: int, fatigue: np.ndarray) -> np.ndarray:
        """``(len(rows), K)`` net value of one send of each campaign in ``week``."""
        marg = self.response(rows, week, fatigue)
        marg -= self.p_control[rows][:, None]
        marg *= self.value[None, :]
        marg -= self.cost[None, :]
        return marg

    def next_fatigue(self, fatigue: np.ndarray, messaged: np.ndarray, week: int) -> None:
        """Move ``fatigue`` (in place) past ``week``: decay, plus a dose where messaged."""
        fatigue *= 1.0 - self.fatigue_recovery
        dose = self.fatigue_rate[self.group, week - 1]
        fatigue += np.where(messaged, dose, 0.0)

    def subset(self, rows: np.ndarray) -> ResponseValues:
        """The same model for the recipients ``rows`` only."""
        return ResponseValues(
            self.logit[rows], self.p_control[rows], self.value, self.cost, self.group[rows],
            self.week_shift, self.fatigue_rate, self.fatigue_weight, self.fatigue_recovery,
        )


def response_values(
    p_response: np.ndarray,
    p_control: np.ndarray,
    group: np.ndarray,
    campaigns: Sequence[Campaign],
    personas: Sequence[Persona],
    dynamics: DynamicsConfig,
    events: Sequence[EventConfig],
    horizon: int,
) -> ResponseValues:
    """The plan's value model from the posterior's rates and the run's dynamics.

    Parameters
    ----------
    p_response : np.ndarray
        ``(n, K)`` posterior mean response probability for each sendable campaign.
    p_control : np.ndarray
        ``(n,)`` posterior mean control rate (zeros without a control campaign).
    group : np.ndarray
        ``(n,)`` index of each recipient's persona in ``personas``.
    campaigns : Sequence[Campaign]
        The sendable campaigns, in the column order of ``p_response``.
    personas : Sequence[Persona]
        The personas (their mean price sensitivity and fatigue rate are used).
    dynamics : DynamicsConfig
        Fatigue weight and recovery (a disabled fatigue adds nothing).
    events : Sequence[EventConfig]
        The events calendar.
    horizon : int
        Weeks planned.

    Returns
    -------
    ResponseValues
        The value model.
    """
    channels = [c.channel for c in campaigns]
    discount = np.array([c.discount for c in campaigns], dtype=float)
    calendar = EventCalendar(events, channels)
    n_g, n_k = len(personas), len(campaigns)
    shift = np.zeros((n_g, horizon, n_k))
    rate = np.zeros((n_g, horizon))
    for g, persona in enumerate(personas):
        sensitivity = persona.traits.price_sensitivity.mean()
        base_shift, base_price, _ = calendar.effects(1, persona.id)
        base = base_shift + discount * base_price * sensitivity
        for w in range(horizon):
            s, price, fatigue_multiplier = calendar.effects(w + 1, persona.id)
            shift[g, w] = s + discount * price * sensitivity - base
            rate[g, w] = persona.traits.fatigue_rate.mean() * fatigue_multiplier
    fatigue = dynamics.fatigue
    p = np.clip(np.asarray(p_response, dtype=float), _CLIP, 1 - _CLIP)
    return ResponseValues(
        logit=logit(p),
        p_control=np.asarray(p_control, dtype=float),
        value=np.array([c.value for c in campaigns], dtype=float),
        cost=np.array([c.cost for c in campaigns], dtype=float),
        group=np.asarray(group, dtype=np.int64),
        week_shift=shift,
        fatigue_rate=rate,
        fatigue_weight=fatigue.weight if fatigue.enabled else 0.0,
        fatigue_recovery=fatigue.recovery if fatigue.enabled else 1.0,
    )
