"""Trait distributions: persona traits are beliefs, not fixed numbers.

Each distribution is a small pydantic model with a ``dist`` tag, so configs write
``{dist: beta, a: 2, b: 30}``, and a ``sample(rng, n)`` method that draws float32 values
from the caller's generator (never the global ``np.random``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The ``numpy.random.Generator`` method that draws this distribution, then the fields it
    #: takes, in order: ``sample`` calls ``rng.<method>(*fields, size=n)``.
    _draw: ClassVar[tuple[str, ...]] = ()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` values as float32."""
        method, *fields = self._draw
        values = getattr(rng, method)(*(getattr(self, f) for f in fields), size=n)
        return values.astype(np.float32)

    def mean(self) -> float:
        """Return the distribution's mean."""
        raise NotImplementedError


class Beta(_Dist):
    """Beta(a, b) on [0, 1]: response propensities, fatigue rates, susceptibility."""

    dist: Literal["beta"] = "beta"
    _draw = ("beta", "a", "b")
    a: float = Field(gt=0, description="First shape parameter (pseudo-successes).")
    b: float = Field(gt=0, description="Second shape parameter (pseudo-failures).")

    def mean(self) -> float:
        """Return the distribution's mean."""
        return self.a / (self.a + self.b)

    @classmethod
    def from_moments(cls, mean: float, var: float, max_concentration: float = 1e4) -> Beta:
        """Fit a Beta to a mean and variance by the method of moments."""
        mean = float(np.clip(mean, 1e-6, 1 - 1e-6))
        var = float(max(var, mean * (1 - mean) / (max_concentration + 1)))
        concentration = min(mean * (1 - mean) / var - 1, max_concentration)
        concentration = max(concentration, 1e-3)
        return cls(a=mean * concentration, b=(1 - mean) * concentration)


class Gamma(_Dist):
    """Gamma(shape, scale) on [0, inf): price sensitivity."""

    dist: Literal["gamma"] = "gamma"
    _draw = ("gamma", "shape", "scale")
    shape: float = Field(gt=0, description="Shape parameter k.")
    scale: float = Field(gt=0, description="Scale parameter theta.")

    def mean(self) -> float:
        """Return the distribution's mean."""
        return self.shape * self.scale


class Normal(_Dist):
    """Normal(mean, sd): logit-scale offsets such as campaign affinity."""

    dist: Literal["normal"] = "normal"
    _draw = ("normal", "mu", "sd")
    mu: float = Field(0.0, description="Mean.")
    sd: float = Field(ge=0, description="Standard deviation (0 gives a constant).")

    def mean(self) -> float:
        """Return the distribution's mean."""
        return self.mu


class LogNormal(_Dist):
    """LogNormal(mu, sigma) of the underlying normal: positive, right-skewed traits."""

    dist: Literal["lognormal"] = "lognormal"
    _draw = ("lognormal", "mu", "sigma")
    mu: float = Field(0.0, description="Mean of log(x).")
    sigma: float = Field(gt=0, description="Standard deviation of log(x).")

    def mean(self) -> float:
        """Return the distribution's mean."""
        return float(np.exp(self.mu + self.sigma**2 / 2))


class Uniform(_Dist):
    """Uniform(low, high)."""

    dist: Literal["uniform"] = "uniform"
    _draw = ("uniform", "low", "high")
    low: float = Field(description="Lower bound.")
    high: float = Field(description="Upper bound.")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self

    def mean(self) -> float:
        """Return the distribution's mean."""
        return (self.low + self.high) / 2


class Constant(_Dist):
    """A point mass, for traits that are known exactly (and for tests)."""

    dist: Literal["constant"] = "constant"
    value: float = Field(description="The value every recipient gets.")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` values as float32."""
        return np.full(n, self.value, dtype=np.float32)

    def mean(self) -> float:
        """Return the distribution's mean."""
        return self.value


Distribution = Annotated[
    Beta | Gamma | Normal | LogNormal | Uniform | Constant, Field(discriminator="dist")
]
"""Any trait distribution, selected in a config by its ``dist`` key."""
