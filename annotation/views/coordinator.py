"""Coordinator pages: rounds (create, dashboard, open/close/reveal, follow-up), discussion, rubrics."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import can_label, can_manage_rounds, can_read_labels, role_of
from features import selectors as catalogue
from features.access import institutions_readable

from .. import access, selectors, services
from ..forms import CommentForm, DeadlineForm, FollowUpForm, RoundCreateForm
from ..models import RaterReliability, Round
from .common import managed_round, role_required, run_service, visible_round, watched_round
from .rubrics import concept_formset, concept_rows


@role_required(lambda user: role_of(user) is not None)
def round_list(request):
    if not (can_manage_rounds(request.user) or can_read_labels(request.user)):
        # raters follow their rounds from their queue; dashboards are not theirs; clinicians have no rounds
        return redirect("queue" if can_label(request.user) else "explain")
    return render(
        request,
        "annotation/round_list.html",
        {
            "rounds": selectors.round_list(user=request.user).order_by("-created_at"),
            "can_create": can_manage_rounds(request.user),
            "can_watch": can_manage_rounds(request.user) or can_read_labels(request.user),
        },
    )


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def round_create(request):
    form = RoundCreateForm(request.POST or None, saes=catalogue.sae_list(user=request.user))
    form.fields["rubric_version"].queryset = access.rubric_versions_writable(request.user).select_related("rubric")
    form.fields["institutions"].queryset = institutions_readable(request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            round_ = services.round_create(
                name=data["name"],
                kind=data["kind"],
                sae=data["sae"],
                rubric_version=data["rubric_version"],
                institutions=list(data["institutions"]),
                overlap=data["overlap"],
                repeat_fraction=data["repeat_fraction"],
                blind=data["blind"],
                selection_rule=data["selection_rule"],
                n_latents=data["n_latents"],
                latent_indices=data["latent_indices"],
                deadline=data["deadline"],
                seed=data["seed"],
                min_repeats=data["min_repeats"],
                routing=services.routing_config_from_fields(fields=data),
                by=request.user,
            )
        except services.InvalidInput as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Draft round created with {round_.assignments.count()} assignments.")
            return redirect("round-dashboard", round_id=round_.pk)
    return render(request, "annotation/round_create.html", {"form": form})


@role_required(lambda user: role_of(user) is not None)
def round_dashboard(request, round_id: int):
    round_ = watched_round(request, round_id)
    statistics = selectors.round_statistics_state(round=round_, user=request.user)
    context = {
        "round": round_,
        "statistics": statistics,
        "can_manage": access.may_manage_round(request.user, round_),
        "progress": selectors.round_progress(round=round_),
        "institutions": round_.institutions.all(),
        "reports": {},
        "alpha": None,
        "alpha_hierarchical": None,
        "report_rows": [],
        "trend": [],
        "by_entropy": [],
        "reliability": [],
        "deadline_form": DeadlineForm(initial={"deadline": round_.deadline}),
        "now": timezone.now(),
    }
    # Before close the dashboard shows progress only: no label content, agreement or consensus (blind).
    # While the statistics job runs it shows the job's progress, not the previous computation's numbers.
    if access.round_content_readable(request.user, round_) and not statistics.pending:
        reports = selectors.round_reports(round=round_)
        context.update(
            {
                "reports": reports,
                "alpha": reports.get("krippendorff_alpha:nominal"),
                "alpha_hierarchical": reports.get("krippendorff_alpha:hierarchical"),
                "report_rows": sorted(round_.agreement_reports.all(), key=lambda r: (r.metric, r.level)),
                "trend": selectors.round_alpha_trend(round=round_) if round_.kind == Round.Kind.CALIBRATION else [],
                "by_entropy": selectors.round_latents_by_entropy(round=round_)[:200],
                "reliability": RaterReliability.objects.of_round(round_.pk)
                .select_related("rater__profile")
                .order_by("-weight"),
            }
        )
    return render(request, "annotation/round_dashboard.html", context)


@role_required(lambda user: role_of(user) is not None)
def round_statistics_status(request, round_id: int):
    """The statistics job's state, polled by the dashboard (round_statistics.js)."""
    round_ = watched_round(request, round_id)
    state = selectors.round_statistics_state(round=round_, user=request.user)
    return JsonResponse(
        {
            "status": state.status,
            "progress": state.progress,
            "message": state.message,
            "pending": state.pending,
            "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        }
    )


_ACTIONS = {
    "open": (services.round_open, "Round opened: raters can label now."),
    "close": (services.round_close, "Round closed: its labels are frozen; the statistics are computing."),
    "reveal": (services.round_reveal, "Round revealed: raters see the anonymised distribution."),
    "statistics": (services.round_statistics_request, "Statistics queued: this page shows their progress."),
}


@role_required(can_manage_rounds)
@require_POST
def round_action(request, round_id: int, action: str):
    round_ = managed_round(request, round_id)
    if action == "close" and request.POST.get("confirmed") != "yes":
        # Closing cannot be undone: without the page's confirmation dialog (no script), ask on a page.
        return render(
            request,
            "annotation/round_close_confirm.html",
            {"round": round_, "progress": selectors.round_progress(round=round_)},
        )
    if action == "delete":
        return run_service(
            request,
            lambda: services.round_delete(round=round_, by=request.user),
            success=f"Draft round '{round_.name}' deleted.",
            redirect_to=reverse("round-list-page"),
        )
    if action == "deadline":
        form = DeadlineForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give the deadline as a date and time.")
            return redirect("round-dashboard", round_id=round_.pk)
        return run_service(
            request,
            lambda: services.round_deadline_set(round=round_, deadline=form.cleaned_data["deadline"], by=request.user),
            success="Deadline updated.",
            redirect_to=reverse("round-dashboard", args=[round_.pk]),
        )
    service, success = _ACTIONS[action]
    return run_service(
        request,
        lambda: service(round=round_, by=request.user),
        success=success,
        redirect_to=reverse("round-dashboard", args=[round_.pk]),
    )


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def round_follow_up(request, round_id: int):
    """The next rubric version (edited with the rubric editor's rows, the change previewed) and a draft
    calibration round on the same latents and raters."""
    round_ = managed_round(request, round_id)
    parent_version = round_.rubric_version
    concepts = list(parent_version.concepts.all())
    form = FollowUpForm(
        request.POST or None, initial={"guidelines": parent_version.guidelines, "token": uuid.uuid4().hex}
    )
    formset = concept_formset(request, concepts=concepts)
    diff = None
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data, specs = form.cleaned_data, formset.specs()
        diff = selectors.rubric_diff(
            before=concepts,
            after=specs,
            guidelines_before=parent_version.guidelines,
            guidelines_after=data["guidelines"],
        )
        if request.POST.get("action") == "save":
            try:
                follow_up = services.round_follow_up_create(
                    parent=round_,
                    guidelines=data["guidelines"],
                    concepts=specs,
                    name=data["name"],
                    deadline=data["deadline"],
                    token=data["token"],
                    by=request.user,
                )
            except (services.InvalidInput, services.RoundStateError) as error:
                form.add_error(None, str(error))
            else:
                version = follow_up.rubric_version.version
                messages.success(
                    request, f"Rubric v{version} and the follow-up draft round '{follow_up.name}' are ready."
                )
                return redirect("round-dashboard", round_id=follow_up.pk)
    return render(
        request,
        "annotation/round_follow_up.html",
        {
            "round": round_,
            "form": form,
            "formset": formset,
            "rows": concept_rows(formset),
            "diff": diff,
            "existing": round_.follow_ups.select_related("rubric_version").order_by("-created_at"),
        },
    )


@role_required(lambda user: role_of(user) is not None)
@require_http_methods(["GET", "POST"])
def round_discussion(request, round_id: int):
    """The revealed distribution and rationales per latent, pseudonyms only, with the discussion."""
    round_ = visible_round(request, round_id)
    if not access.may_see_distribution(request.user, round_):
        raise PermissionDenied("The distribution is shown once the round is revealed.")
    can_discuss = access.may_discuss_round(request.user, round_)
    form = CommentForm(request.POST or None)
    if request.method == "POST":
        if not can_discuss:
            raise PermissionDenied("Only the round's raters and coordinators discuss it, after reveal.")
        if form.is_valid():
            latent = round_.latents.filter(pk=form.cleaned_data["latent"]).first()
            try:
                if latent is None:
                    raise services.InvalidInput("this latent is not part of the round")
                services.comment_create(round=round_, latent=latent, text=form.cleaned_data["text"], by=request.user)
            except (services.InvalidInput, services.RoundStateError) as error:
                messages.error(request, str(error))
            else:
                return redirect(f"{reverse('round-discussion', args=[round_.pk])}#latent-{latent.pk}")
        else:
            messages.error(request, "Write a comment first.")
    return render(
        request,
        "annotation/round_discussion.html",
        {
            "round": round_,
            "distribution": selectors.round_distribution(round=round_),
            "statistics": selectors.round_statistics_state(round=round_, user=request.user),
            "can_discuss": can_discuss,
            "can_manage": access.may_manage_round(request.user, round_),
        },
    )
