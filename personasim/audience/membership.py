"""The audience to rank: recipients with hard and soft persona membership."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.audience.profiles import PersonaProfiles
from personasim.config.persona import Persona
from personasim.core.errors import DataError
from personasim.core.types import CONSENT, PERSONA_ID, Audience


def persona_profiles(personas: list[Persona]) -> PersonaProfiles:
    """Profiles whose centroids are the personas' own attributes (for hand-written personas)."""
    frame = pd.DataFrame([p.attributes for p in personas])
    if frame.empty or frame.shape[1] == 0:
        frame = pd.DataFrame({"_persona": np.arange(len(personas), dtype=float)})
    return PersonaProfiles.fit(
        frame, np.arange(len(personas)), [p.id for p in personas], features=list(frame.columns)
    )


def audience_from_recipients(
    recipients: pd.DataFrame,
    persona_ids: tuple[str, ...],
    profiles: PersonaProfiles,
    temperature: float,
    source: str,
) -> Audience:
    """Place recipients among personas.

    A ``persona_id`` column, when present, is taken as a hard assignment; otherwise each
    recipient's attributes give a soft membership over personas (nearest persona = hard id).
    """
    frame = recipients.copy()
    if CONSENT not in frame:
        frame[CONSENT] = True
    if PERSONA_ID in frame:
        index = {p: i for i, p in enumerate(persona_ids)}
        codes = frame[PERSONA_ID].astype(str).map(index)
        if codes.isna().any():
            row = int(np.flatnonzero(codes.isna().to_numpy())[0])
            bad = frame[PERSONA_ID].iat[row]
            raise DataError(source, f"row {row + 1}", f"persona_id {bad!r} is not a persona")
        membership = np.eye(len(persona_ids), dtype=np.float32)[codes.to_numpy(np.int64)]
    else:
        membership = profiles.membership(frame, temperature=temperature,
                                         source=source).astype(np.float32)
        frame.insert(1, PERSONA_ID, np.array(persona_ids, dtype=object)[membership.argmax(1)])
    frame[PERSONA_ID] = frame[PERSONA_ID].astype(str)
    return Audience(recipients=frame, membership=membership, persona_ids=persona_ids)
