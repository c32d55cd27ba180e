"""The logging filters: demoted wave-fit messages say which fit they are about."""

from __future__ import annotations

import logging

import pytest

from personasim.core.log_filters import demoted_for, filtered_logger


def test_demoted_messages_say_which_fit_they_are_about(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("personasim.test.demoted")
    with caplog.at_level(logging.INFO, logger="personasim.test.demoted"), \
            filtered_logger("personasim.test.demoted", demoted_for("A/B wave 3 fit")):
        log.warning("R-hat %.3f exceeds 1.01", 1.02)
    record = caplog.records[-1]
    assert record.levelname == "INFO"
    assert record.getMessage() == "A/B wave 3 fit: R-hat 1.020 exceeds 1.01"
