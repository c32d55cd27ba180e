"""The simulated population as an audience to rank."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.agents.model import CampaignModel
from personasim.core.types import CONSENT, PERSONA_ID, RECIPIENT_ID, Audience


def simulated_audience(model: CampaignModel) -> Audience:
    """The simulated population as an audience: one-hot membership, everyone consents."""
    ids, personas, codes = [], [], []
    for j, agent in enumerate(model.cohorts):
        ids.append(model.recipient_ids(j))
        personas.append(np.full(agent.size, agent.persona.id, dtype=object))
        codes.append(np.full(agent.size, j, dtype=np.int64))
    code = np.concatenate(codes)
    frame = pd.DataFrame(
        {
            RECIPIENT_ID: np.concatenate(ids).astype(str),
            PERSONA_ID: np.concatenate(personas).astype(str),
            CONSENT: True,
        }
    )
    membership = np.eye(len(model.cohorts), dtype=np.float32)[code]
    return Audience(recipients=frame, membership=membership, persona_ids=model.persona_ids)
