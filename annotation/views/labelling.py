"""The rater's pages: their rounds, a round's queue, and one item (label form or detection answers)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.permissions import can_label

from .. import selectors, services
from ..forms import DetectionForm, LabelForm
from ..models import RATIONALE_MIN_LENGTH, Round
from .common import role_required


@role_required(can_label)
def queue(request):
    return render(
        request, "annotation/queue.html", {"rounds": selectors.rater_rounds(user=request.user), "now": timezone.now()}
    )


@role_required(can_label)
def round_queue(request, round_id: int):
    round_ = _rater_round_or_404(request, round_id)
    items = selectors.rater_queue(user=request.user, round=round_)
    return render(
        request,
        "annotation/round_queue.html",
        {
            "round": round_,
            "items": items,
            "n_done": sum(item.done for item in items),
            "next_item": next((item for item in items if not item.done), None),
            "now": timezone.now(),
            "deadline_passed": round_.deadline is not None and timezone.now() > round_.deadline,
        },
    )


def _rater_round_or_404(request, round_id: int) -> Round:
    round_ = (
        Round.objects.filter(pk=round_id, assignments__rater=request.user)
        .exclude(status=Round.Status.DRAFT)
        .distinct()
        .first()
    )
    if round_ is None:
        raise Http404("You hold no items in this round.")
    return round_


def _item_url(round_id: int, position: int) -> str:
    return reverse("item", args=[round_id, position])


def _after_submit(items, current_position: int) -> str:
    """The next item still to do after this one (wrapping to the first), or the round's queue."""
    pending = [item for item in items if not item.done and item.position != current_position]
    later = [item for item in pending if item.position > current_position]
    target = (later or pending or [None])[0]
    return _item_url(target.round_id, target.position) if target else reverse("round-queue", args=[items[0].round_id])


@role_required(can_label)
@require_http_methods(["GET", "POST"])
def item(request, round_id: int, position: int):
    assignment = selectors.rater_assignment(user=request.user, round_id=round_id, position=position)
    if assignment is None or assignment.round.status == Round.Status.DRAFT:
        raise Http404("No such item in your queue.")
    if assignment.round.kind == Round.Kind.DETECTION:
        return _detection_item(request, assignment)
    label = selectors.rater_label(assignment=assignment)
    form = LabelForm(request.POST or None, initial=_initial(label))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            submission = services.label_submit(
                assignment=assignment,
                concept_code=data["concept_code"],
                free_text=data["free_text"],
                confidence=data["confidence"],
                rationale=data["rationale"],
                time_spent_seconds=data["time_spent_seconds"] or 0,
                idempotency_key=data["idempotency_key"],
                by=request.user,
            )
        except services.RoundStateError as error:
            messages.error(request, str(error))
        except services.InvalidInput as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Label saved." if not submission.replayed else "Label already saved.")
            items = selectors.rater_queue(user=request.user, round=assignment.round)
            return redirect(_after_submit(items, position))
    return _render_item(request, assignment, form=form, label=label, template="annotation/item.html")


def _initial(label) -> dict:
    if label is None:
        return {}
    return {
        "concept_code": label.concept.code,
        "free_text": label.free_text,
        "confidence": label.confidence,
        "rationale": label.rationale,
    }


def _render_item(request, assignment, *, form, label, template: str, extra=None):
    items = selectors.rater_queue(user=request.user, round=assignment.round)
    now = timezone.now()
    deadline_passed = assignment.round.deadline is not None and now > assignment.round.deadline
    positions = [item.position for item in items]
    here = positions.index(assignment.position)
    previous_url = _item_url(assignment.round_id, positions[here - 1]) if here > 0 else None
    next_url = _item_url(assignment.round_id, positions[here + 1]) if here + 1 < len(positions) else None
    context = {
        "round": assignment.round,
        "assignment": assignment,
        "form": form,
        "label": label,
        "n_items": len(items),
        "n_done": sum(item.done for item in items),
        "number": here + 1,
        "previous_url": previous_url,
        "next_url": next_url,
        "editable": assignment.round.status == Round.Status.OPEN and not deadline_passed,
        "deadline_passed": deadline_passed,
        "now": now,
        # A fresh key per rendering: a retried POST of this page reuses it, a new visit gets a new one.
        "idempotency_key": form.data.get("idempotency_key") if form.is_bound else uuid.uuid4().hex,
        "rationale_min_length": RATIONALE_MIN_LENGTH,
    }
    if template == "annotation/item.html":
        context.update(
            {
                "evidence": selectors.latent_evidence(
                    latent=assignment.latent, user=request.user, shuffle_seed=assignment.pk
                ),
                "concepts": selectors.rubric_concepts(round=assignment.round),
                "co_labels": selectors.visible_co_labels(assignment=assignment, user=request.user),
                "context_panel": selectors.latent_context(latent=assignment.latent, round=assignment.round),
                "chosen_code": form.data.get("concept_code")
                if form.is_bound
                else (label.concept.code if label else ""),
                "chosen_confidence": str(
                    form.data.get("confidence") if form.is_bound else (label.confidence if label else "")
                ),
            }
        )
    context.update(extra or {})
    return render(request, template, context)


def _detection_item(request, assignment):
    items = selectors.detection_items(assignment=assignment, user=request.user)
    form = DetectionForm(
        request.POST or None,
        items=items,
        initial={f"item_{i.pk}": ("yes" if i.answer else "no") for i in items if i.answer is not None},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.detection_response_submit(assignment=assignment, answers=form.answers(), by=request.user)
        except services.RoundStateError as error:
            messages.error(request, str(error))
        except services.InvalidInput as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Answers saved.")
            return redirect(
                _after_submit(selectors.rater_queue(user=request.user, round=assignment.round), assignment.position)
            )
    code = items[0].concept_code if items else ""
    concept = assignment.round.rubric_version.concepts.filter(code=code).first()
    rows = [(item, form[f"item_{item.pk}"]) for item in items]
    return _render_item(
        request,
        assignment,
        form=form,
        label=None,
        template="annotation/detection_item.html",
        extra={"rows": rows, "concept": concept, "concept_code": code},
    )
