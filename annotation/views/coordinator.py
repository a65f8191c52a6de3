"""Coordinator pages: rounds (create, dashboard, open/close/reveal, follow-up), discussion, rubrics."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import (
    can_manage_rounds,
    may_discuss_round,
    may_manage_round,
    may_see_round_distribution,
    role_of,
)
from features import selectors as catalogue

from .. import selectors, services
from ..forms import CommentForm, FollowUpForm, RoundCreateForm, RubricForm, concepts_as_lines
from ..models import RaterReliability, Round
from ..stats.routing import RoutingConfig
from .common import managed_round, role_required, run_service, visible_round, watched_round


@role_required(lambda user: role_of(user) is not None)
def round_list(request):
    return render(request, "annotation/round_list.html", {
        "rounds": selectors.round_list(user=request.user).order_by("-created_at"),
        "can_create": can_manage_rounds(request.user),
    })


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def round_create(request):
    form = RoundCreateForm(request.POST or None, saes=catalogue.sae_list(user=request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            round_ = services.round_create(
                name=data["name"], kind=data["kind"], sae=data["sae"], rubric_version=data["rubric_version"],
                institutions=list(data["institutions"]), overlap=data["overlap"],
                repeat_fraction=data["repeat_fraction"], blind=data["blind"], selection_rule=data["selection_rule"],
                n_latents=data["n_latents"], latent_indices=data["latent_indices"], deadline=data["deadline"],
                seed=data["seed"], min_repeats=data["min_repeats"],
                routing=RoutingConfig(min_rounds=data["routing_min_rounds"],
                                      entropy_ceiling=data["routing_entropy_ceiling"],
                                      top_posterior_floor=data["routing_top_posterior_floor"]),
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
    reports = selectors.round_reports(round=round_)
    return render(request, "annotation/round_dashboard.html", {
        "round": round_,
        "can_manage": may_manage_round(request.user, round_),
        "progress": selectors.round_progress(round=round_),
        "reports": reports,
        "alpha": reports.get("krippendorff_alpha:nominal"),
        "alpha_hierarchical": reports.get("krippendorff_alpha:hierarchical"),
        "report_rows": sorted(round_.agreement_reports.all(), key=lambda r: (r.metric, r.level)),
        "trend": selectors.round_alpha_trend(round=round_) if round_.kind == Round.Kind.CALIBRATION else [],
        "by_entropy": selectors.round_latents_by_entropy(round=round_)[:200],
        "reliability": RaterReliability.objects.of_round(round_.pk)
                       .select_related("rater__profile").order_by("-weight"),
        "institutions": round_.institutions.all(),
    })


_ACTIONS = {
    "open": (services.round_open, "Round opened: raters can label now."),
    "close": (services.round_close, "Round closed: labels are frozen and the statistics computed."),
    "reveal": (services.round_reveal, "Round revealed: raters see the anonymised distribution."),
    "statistics": (lambda *, round, by: services.round_statistics_compute(round=round, by=by),
                   "Statistics recomputed."),
}


@role_required(can_manage_rounds)
@require_POST
def round_action(request, round_id: int, action: str):
    round_ = managed_round(request, round_id)
    service, success = _ACTIONS[action]
    return run_service(request, lambda: service(round=round_, by=request.user), success=success,
                       redirect_to=reverse("round-dashboard", args=[round_.pk]))


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def round_follow_up(request, round_id: int):
    round_ = managed_round(request, round_id)
    form = FollowUpForm(request.POST or None, initial={
        "guidelines": round_.rubric_version.guidelines, "concepts": concepts_as_lines(round_.rubric_version),
    })
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            follow_up = services.round_follow_up_create(
                parent=round_, guidelines=data["guidelines"], concepts=data["concepts"], name=data["name"],
                deadline=data["deadline"], by=request.user,
            )
        except (services.InvalidInput, services.RoundStateError) as error:
            form.add_error(None, str(error))
        else:
            version = follow_up.rubric_version.version
            messages.success(request, f"Rubric v{version} and a follow-up draft round created.")
            return redirect("round-dashboard", round_id=follow_up.pk)
    return render(request, "annotation/round_follow_up.html", {"round": round_, "form": form})


@role_required(lambda user: role_of(user) is not None)
@require_http_methods(["GET", "POST"])
def round_discussion(request, round_id: int):
    """The revealed distribution and rationales per latent, pseudonyms only, with the discussion."""
    round_ = visible_round(request, round_id)
    if not may_see_round_distribution(request.user, round_):
        raise PermissionDenied("The distribution is shown once the round is revealed.")
    can_discuss = may_discuss_round(request.user, round_)
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
    return render(request, "annotation/round_discussion.html", {
        "round": round_, "distribution": selectors.round_distribution(round=round_), "can_discuss": can_discuss,
        "can_manage": may_manage_round(request.user, round_),
    })


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def rubric_create(request):
    form = RubricForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.rubric_create(name=data["name"], description=data["description"],
                                             guidelines=data["guidelines"], concepts=data["concepts"], by=request.user)
        except services.InvalidInput as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Rubric {version} created with {version.concepts.count()} concepts.")
            return redirect("round-create")
    return render(request, "annotation/rubric_create.html", {"form": form})
