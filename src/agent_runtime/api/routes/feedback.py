"""``POST /v1/traces/{trace_id}/feedback``: a person's rating of the answer given in a trace."""

from __future__ import annotations

from fastapi import APIRouter, Path

from agent_runtime.api.deps import RuntimeDep
from agent_runtime.api.schemas import ERROR_RESPONSES, FeedbackOut, FeedbackRequest
from agent_runtime.feedback import TRACE_ID_PATTERN

router = APIRouter(prefix="/v1/traces", tags=["feedback"], responses=ERROR_RESPONSES)


@router.post("/{trace_id}/feedback", status_code=201)
async def give_feedback(
    body: FeedbackRequest,
    runtime: RuntimeDep,
    trace_id: str = Path(pattern=TRACE_ID_PATTERN, description="The answer's correlation id."),
) -> FeedbackOut:
    """Rate the answer of the request that ran in ``trace_id`` (its ``X-Correlation-ID``):
    ``score`` 0 to 1, optional ``label``, ``comment`` and ``name``. Recorded as a
    ``gen_ai.evaluation.result`` event in that trace, a ``gen_ai.evaluation.score`` point and
    a ``user_feedback`` audit record. 404 when no request of the service ran in that trace,
    422 when the feedback does not fit its limits."""
    record = await runtime.feedback.rate(
        trace_id, score=body.score, label=body.label, comment=body.comment, name=body.name
    )
    return FeedbackOut.from_record(record)
