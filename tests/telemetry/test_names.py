"""One vocabulary (names.py): the Literal types and the constants that name their values
agree, and every name the catalogue and the layer emit is one of names.py's constants."""

from __future__ import annotations

from typing import get_args

import telemetry
from telemetry import names as n


def _values(prefix: str) -> set[str]:
    return {
        value for key, value in vars(n).items() if key.startswith(prefix) and isinstance(value, str)
    }


def test_every_outcome_literal_value_has_its_constant_and_no_constant_is_extra() -> None:
    literals = {
        *get_args(n.Outcome),
        *get_args(n.ToolOutcome),
        *get_args(n.ToolSpanOutcome),
        *get_args(n.HITLOutcome),
    }
    assert literals == _values("OUTCOME_")


def test_the_decision_and_tool_stage_literals_match_their_constants() -> None:
    assert set(get_args(n.Decision)) == _values("DECISION_")
    assert set(get_args(n.ToolStage)) == {n.TOOL_REQUESTED, n.TOOL_REQUIRES_APPROVAL}
    assert telemetry.Decision is n.Decision
    assert telemetry.SwitchTrigger is n.SwitchTrigger


def test_every_catalogue_event_is_named_in_names() -> None:
    assert {event.name for event in telemetry.CATALOG} == _values("EVENT_")


def test_the_tool_span_outcomes_include_every_tool_outcome_and_the_request_ends() -> None:
    assert set(get_args(n.ToolOutcome)) <= set(get_args(n.ToolSpanOutcome))
    assert {n.OUTCOME_DISCONNECTED, n.OUTCOME_SHUTDOWN, n.OUTCOME_TIMEOUT} <= set(
        get_args(n.ToolSpanOutcome)
    )
