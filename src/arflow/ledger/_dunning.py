"""Handlers of what the engine records on receivables: dunning steps sent, dunning blocks
and risk flags."""

from __future__ import annotations

from ..domain import Receivable
from ..errors import ValidationError
from ..events import DunningBlockChanged, DunningStepRecorded, RiskFlagged
from ._checks import live
from ._context import Ctx


def dunning_step_recorded(ctx: Ctx, e: DunningStepRecorded) -> None:
    """Record a dunning step sent: the level reached and the day."""
    r: Receivable = ctx.get("receivable", e.receivable_id)
    live(r, "DunningStepRecorded")
    new = r.model_copy(
        update={"dunning_level": max(r.dunning_level, e.level), "last_dunned_on": e.sent_on}
    )
    ctx.put(new, r, f"dunning {e.ladder}/{e.step} (level {e.level}) sent on {e.sent_on}")


def dunning_block_changed(ctx: Ctx, e: DunningBlockChanged) -> None:
    """Block (with a reason) or unblock dunning of a receivable."""
    r: Receivable = ctx.get("receivable", e.receivable_id)
    if e.blocked and not e.reason:
        raise ValidationError(f"receivable {r.id}: a dunning block needs a reason")
    new = r.model_copy(
        update={
            "dunning_block": e.blocked,
            "dunning_block_reason": e.reason if e.blocked else None,
        }
    )
    ctx.put(new, r, ("dunning blocked: " + (e.reason or "")) if e.blocked else "unblocked")


def risk_flagged(ctx: Ctx, e: RiskFlagged) -> None:
    """Record the risk level a rule gave a receivable."""
    r: Receivable = ctx.get("receivable", e.receivable_id)
    ctx.put(
        r.model_copy(update={"risk_level": e.level}),
        r,
        f"risk {e.level} by {e.rule} on {e.flagged_on}",
    )
