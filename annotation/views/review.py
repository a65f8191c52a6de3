"""Pages after labelling: senior adjudication, the researchers' latent browser, and exports."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import can_adjudicate, can_export, can_read_labels
from features.access import institutions_readable, latents_readable, saes_readable
from features.models import Latent

from .. import access, exports, selectors, services
from ..forms import AdjudicationForm, ExportForm
from .common import role_required


@role_required(can_adjudicate)
def adjudication_queue(request):
    return render(
        request,
        "annotation/adjudication_queue.html",
        {
            "latents": selectors.adjudication_queue(user=request.user)[:500],
            # Routing follows the SAE-wide consensus: a round still computing may add or remove latents.
            "statistics": selectors.sae_statistics_state(sae_ids=saes_readable(request.user), user=request.user),
        },
    )


def _latent_or_404(latents, latent_id: int) -> Latent:
    latent = latents.select_related("sae__activation_set__corpus").filter(pk=latent_id).first()
    if latent is None:
        raise Http404("No such latent.")
    return latent


@role_required(can_adjudicate)
@require_http_methods(["GET", "POST"])
def adjudication_decide(request, latent_id: int):
    # Only a latent in the user's queue: any other id (open round, foreign SAE, not ambiguous) is not found.
    latent = _latent_or_404(access.latents_adjudicable(request.user), latent_id)
    concepts = selectors.adjudication_concepts(latent=latent)
    form = AdjudicationForm(request.POST or None, concepts=concepts)
    if request.method == "POST" and form.is_valid():
        concept = next(c for c in concepts if str(c.pk) == str(form.cleaned_data["concept"]))
        try:
            services.adjudication_record(
                latent=latent, concept=concept, rationale=form.cleaned_data["rationale"], by=request.user
            )
        except (services.InvalidInput, services.RoundStateError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Latent {latent.index} adjudicated as {concept.code}.")
            return redirect("adjudication-queue")
    return render(
        request,
        "annotation/adjudication_decide.html",
        {
            "latent": latent,
            "form": form,
            "history": selectors.latent_history(latent=latent, user=request.user),
            **selectors.latent_label_distribution(latent=latent),
            "statistics": selectors.sae_statistics_state(sae_ids=[latent.sae_id], user=request.user),
            "evidence": selectors.latent_evidence(latent=latent, user=request.user),
        },
    )


@role_required(can_read_labels)
def latent_browser(request):
    sort = request.GET.get("sort", "index")
    sae = request.GET.get("sae", "")
    latents = selectors.latent_browse(
        user=request.user,
        q=request.GET.get("q", ""),
        sort=sort,
        sae_id=int(sae) if sae.isdigit() else None,
        status=request.GET.get("status", ""),
    )
    page = Paginator(latents, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "annotation/latent_browser.html",
        {
            "page": page,
            "q": request.GET.get("q", ""),
            "sort": sort,
            "sae": sae,
            "status": request.GET.get("status", ""),
            "statuses": Latent.Status.choices,
            "sorts": [
                ("index", "Index"),
                ("density", "Density ↓"),
                ("agreement", "Agreement ↓"),
                ("-agreement", "Agreement ↑"),
                ("entropy", "Entropy ↓"),
                ("-entropy", "Entropy ↑"),
                ("detection", "Detection accuracy ↓"),
                ("-detection", "Detection accuracy ↑"),
            ],
        },
    )


@role_required(can_read_labels)
def latent_detail(request, latent_id: int):
    latent = _latent_or_404(latents_readable(request.user), latent_id)
    if not access.may_read_latent_labels(request.user, latent):
        raise Http404("No such latent.")
    return render(
        request,
        "annotation/latent_detail.html",
        {
            "latent": latent,
            "history": selectors.latent_history(latent=latent, user=request.user),
            **selectors.latent_label_distribution(latent=latent),
            "statistics": selectors.sae_statistics_state(sae_ids=[latent.sae_id], user=request.user),
            "evidence": selectors.latent_evidence(latent=latent, user=request.user),
            # The latent page shows the logit effects in their own card (_logit_effects.html).
            "context_panel": selectors.latent_context(latent=latent),
            "link_neighbours": True,
            "logit_effects_elsewhere": True,
        },
    )


@role_required(can_export)
def export(request):
    """The form; submitting it (GET, so the link can be shared) downloads the file."""
    form = ExportForm(request.GET or None)
    form.fields["institution"].queryset = institutions_readable(request.user)
    if request.GET and form.is_valid():
        data = form.cleaned_data
        # A round or SAE the user may not read is as unknown as one that was never created.
        watched = access.rounds_watchable(request.user).filter(pk=data["round"]).first() if data["round"] else None
        if data["round"] and watched is None:
            form.add_error("round", "Unknown round.")
        if data["sae"] and not saes_readable(request.user).filter(pk=data["sae"]).exists():
            form.add_error("sae", "Unknown SAE.")
    statistics = None
    if request.GET and form.is_valid():
        data = form.cleaned_data
        scope = exports.ExportScope(
            round_id=data["round"],
            sae_id=data["sae"],
            institution=data["institution"],
            include_simulated=data["include_simulated"],
        )
        if data["kind"] == "latents":
            # The per-latent file carries agreement and consensus: not while they are missing or stale.
            statistics = exports.latent_export_statistics(user=request.user, scope=scope)
        if statistics is None or not statistics.incomplete:
            return exports.export_response(user=request.user, scope=scope, kind=data["kind"], fmt=data["format"])
        form.add_error(None, "Export the latents when their statistics are done (see above); the labels export now.")
    return render(request, "annotation/export.html", {"form": form, "statistics": statistics})
