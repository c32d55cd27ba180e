"""Response models: how likely a recipient is to respond to a stimulus (RecSim's choice model).

A response model is registered by name in :data:`RESPONSE_MODELS`; a config picks one with
``simulation.response_model``. It is a pure function of traits, state and context, so the
cohort engine and any per-recipient engine share it. A third-party package adds one by
registering it from a ``personasim.plugins`` entry point (see :mod:`personasim.core.plugins`)::

    from personasim.behaviour.response import RESPONSE_MODELS

    @RESPONSE_MODELS.register("saturating")
    class SaturatingResponse: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from personasim.behaviour.population import CohortTraits
from personasim.config.campaign import CampaignArrays
from personasim.core.numeric import sigmoid32
from personasim.core.registry import Registry


@dataclass(frozen=True)
class ResponseContext:
    """What the world looks like to one cohort this week.

    Attributes
    ----------
    week
        1-based week number.
    logit_shift, price_multiplier
        ``(n_campaigns,)`` event effects per campaign (channel-specific events differ).
    fatigue_weight, influence_weight
        Strength of fatigue (logit penalty per unit) and of word of mouth.
    influence
        ``(n,)`` share of each recipient's neighbours who responded last week.
    """

    week: int
    logit_shift: np.ndarray
    price_multiplier: np.ndarray
    fatigue_weight: float
    influence_weight: float
    influence: np.ndarray | None


class ResponseModel(Protocol):
    """The interface a response model implements."""

    def probability(
        self,
        traits: CohortTraits,
        fatigue: np.ndarray,
        campaigns: CampaignArrays,
        assignment: int | np.ndarray,
        context: ResponseContext,
    ) -> np.ndarray:
        """Return each recipient's P(response) this week, float32 ``(n,)``.

        ``assignment`` is one campaign index for the whole cohort, or an ``(n,)`` int array;
        ``-1`` or the control index means nothing is sent (only organic responses).
        """
        ...


RESPONSE_MODELS: Registry[type[ResponseModel]] = Registry("response model")


def _sent_mask(assignment: np.ndarray, control: int | None) -> np.ndarray:
    sent = assignment >= 0
    if control is not None:
        sent &= assignment != control
    return sent


class _LogitModel:
    """P = organic + (1 - organic) * sigmoid(stimulus logit), for recipients sent a campaign.

    The one implementation behind :class:`LogisticResponse` (:attr:`dynamic`: the full
    stimulus logit) and :class:`StaticResponse` (the base logit only). Recipients sent
    nothing (``-1`` or the control) keep their organic rate.
    """

    #: Whether the stimulus has the price, event, fatigue and influence terms.
    dynamic: ClassVar[bool]

    def probability(
        self,
        traits: CohortTraits,
        fatigue: np.ndarray,
        campaigns: CampaignArrays,
        assignment: int | np.ndarray,
        context: ResponseContext,
    ) -> np.ndarray:
        """Each recipient's response probability this week (float32)."""
        if np.isscalar(assignment):
            k = int(assignment)
            if k < 0 or k == campaigns.control_index:
                return traits.organic.copy()
            if self.dynamic:
                return _whole_cohort(traits, fatigue, campaigns, k, context)
        idx = np.broadcast_to(np.asarray(assignment), (traits.n,))
        p = traits.organic.copy()
        sent = np.flatnonzero(_sent_mask(idx, campaigns.control_index))
        if sent.size == 0:
            return p
        k = idx[sent]
        z = traits.base_logit[sent, k]
        if self.dynamic:
            z = z + (
                campaigns.discount[k] * context.price_multiplier[k] * traits.price_sensitivity[sent]
                + context.logit_shift[k]
            )
            z -= context.fatigue_weight * fatigue[sent]
            if context.influence is not None:
                z += (context.influence_weight * traits.susceptibility[sent]
                      * context.influence[sent])
        p[sent] += (1 - p[sent]) * sigmoid32(z)
        return p


def _whole_cohort(
    traits: CohortTraits,
    fatigue: np.ndarray,
    campaigns: CampaignArrays,
    k: int,
    context: ResponseContext,
) -> np.ndarray:
    """The dynamic model's P(response) for a cohort all sent campaign ``k``.

    Computed in place on two float32 buffers: no other per-recipient temporaries.
    """
    z = np.multiply(
        traits.price_sensitivity,
        np.float32(campaigns.discount[k] * context.price_multiplier[k]),
    )
    z += traits.base_logit[:, k]
    z += np.float32(context.logit_shift[k])
    work = np.empty_like(z)
    if context.fatigue_weight:
        z -= np.multiply(fatigue, np.float32(context.fatigue_weight), out=work)
    if context.influence is not None and context.influence_weight:
        np.multiply(traits.susceptibility, context.influence, out=work)
        work *= np.float32(context.influence_weight)
        z += work
    return _mix(traits.organic, z, work)


def _mix(organic: np.ndarray, z: np.ndarray, work: np.ndarray) -> np.ndarray:
    """``organic + (1 - organic) * sigmoid(z)``, computed in place in ``z`` (float32)."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += np.float32(1.0)
    np.reciprocal(z, out=z)  # sigmoid of the original z
    np.multiply(organic, z, out=work)
    z -= work
    z += organic
    return z


@RESPONSE_MODELS.register("logistic")
class LogisticResponse(_LogitModel):
    """P = organic + (1 - organic) * sigmoid(stimulus logit).

    The stimulus logit is the recipient's base logit for the campaign, plus price sensitivity
    times the offer's discount (scaled by events), plus event shifts, minus fatigue, plus
    susceptibility times the share of neighbours who responded last week.
    """

    dynamic = True


@RESPONSE_MODELS.register("static")
class StaticResponse(_LogitModel):
    """P = organic + (1 - organic) * sigmoid(base logit): no fatigue, events or influence.

    Useful as a control in experiments, and as a base for a plug-in that adjusts its output.
    """

    dynamic = False
