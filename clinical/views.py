"""Clinical pages: explain a note, drift audits, the protected-attribute report."""

from __future__ import annotations

from math import ceil

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import (
    can_read_labels,
    can_run_jobs,
    corpora_visible_to,
    has_role,
    role_of,
)
from annotation.views.common import role_required
from features.models import Corpus
from inference.selectors import job_footprint
from inference.services import BrokerUnavailable

from . import charts, selectors, services
from .forms import DriftForm, ExplainForm
from .rendering import note_html
from .throttles import ExplainThrottle

DRIFT_READERS = frozenset({"researcher", "coordinator", "admin"})


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def visible_sae(user, sae_id: int):
    """An SAE the user may explain with, else 404: a private corpus's SAE does not exist for others."""
    sae = selectors.explainable_saes(user=user).filter(pk=sae_id).first()
    if sae is None:
        raise Http404("No such SAE.")
    return sae


def _explain_throttled(request) -> float | None:
    """Seconds to wait when the user has used up CLINICAL_EXPLAIN_RATE, else None. The page asks the API's
    own throttles (the same budget, and the matrices' no-throttle switch turns both off)."""
    from .apis import NoteExplainApi

    for throttle in NoteExplainApi().get_throttles():
        if isinstance(throttle, ExplainThrottle) and not throttle.allow_request(request, None):
            return throttle.wait() or 60.0
    return None


@role_required(lambda user: role_of(user) is not None)
@require_http_methods(["GET", "POST"])
def explain(request):
    saes = list(selectors.explainable_saes(user=request.user))
    form = ExplainForm(request.POST or None, saes=saes, initial={"sae": request.GET.get("sae")})
    context = {"form": form, "disclaimer": services.DISCLAIMER, "max_note_chars": services.max_note_chars()}
    status = 200
    if request.method == "POST":
        sae_id = request.POST.get("sae", "")
        if sae_id.isdigit():
            visible_sae(request.user, int(sae_id))  # a foreign SAE answers 404, not a form error
        wait = _explain_throttled(request)
        if wait is not None:
            form.add_error(None, f"You have explained many notes in a short time; try again in {ceil(wait)} s.")
            status = 429
        elif form.is_valid():
            data = form.cleaned_data
            sae = visible_sae(request.user, data["sae"])
            try:
                explanation = services.note_explain(
                    sae=sae,
                    text=data["text"],
                    by=request.user,
                    store=data["store"],
                    flow=not data["only_this_layer"],
                    ip=_client_ip(request),
                )
            except services.NoteRejected as error:
                form.add_error("text", str(error))
            else:
                context.update(
                    explanation=explanation, sae=sae, note=note_html(text=data["text"], tokens=explanation.tokens)
                )
    return render(request, "clinical/explain.html", context, status=status)


@role_required(lambda user: role_of(user) is not None)
@require_http_methods(["GET", "POST"])
def saved_notes(request):
    """The notes the user kept (only theirs), each with a delete button; old ones are purged first."""
    if request.method == "POST":
        note_id = request.POST.get("delete", "")
        note = selectors.saved_notes(user=request.user).filter(pk=note_id).first() if note_id.isdigit() else None
        if note is None:
            raise Http404("No such note.")
        services.saved_note_delete(note=note, by=request.user)
        messages.success(request, "The note was deleted.")
        return redirect("explain-saved")
    services.saved_notes_purge()
    return render(
        request,
        "clinical/saved_notes.html",
        {"notes": selectors.saved_notes(user=request.user), "days": settings.CLINICAL_SAVED_NOTE_DAYS},
    )


@role_required(lambda user: has_role(user, DRIFT_READERS))
@require_http_methods(["GET", "POST"])
def drift_list(request):
    saes = list(selectors.explainable_saes(user=request.user).filter(activation_set__isnull=False))
    corpora = list(corpora_visible_to(request.user, Corpus.objects.all()))
    form = DriftForm(request.POST or None, saes=saes, corpora=corpora)
    if request.method == "POST":
        if not can_run_jobs(request.user):
            messages.error(request, "Only researchers launch drift audits.")
        elif form.is_valid():
            data = form.cleaned_data
            sae = visible_sae(request.user, data["sae"])
            corpus = next(c for c in corpora if c.pk == data["corpus"])
            reference = next((c for c in corpora if c.pk == data["reference"]), None)
            try:
                job = services.drift_audit_start(
                    sae=sae, corpus=corpus, reference=reference, thresholds=form.thresholds(), by=request.user
                )
            except BrokerUnavailable:
                messages.error(request, "The job queue is not answering; try again shortly.")
            except ValueError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, f"Drift audit queued as job {job.pk}.")
                return redirect("drift-detail", job_id=job.pk)
    return render(
        request,
        "clinical/drift_list.html",
        {"form": form, "jobs": selectors.drift_jobs(user=request.user)[:50], "can_run": can_run_jobs(request.user)},
    )


@role_required(lambda user: has_role(user, DRIFT_READERS))
def drift_detail(request, job_id: int):
    job = selectors.drift_jobs(user=request.user).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such drift audit.")
    context = {"job": job, "footprint": job_footprint(job), "can_run": can_run_jobs(request.user)}
    if job.status == "succeeded":
        report = selectors.drift_report(job=job, user=request.user, full=True)
        visible_sae(request.user, report["sae"].pk)
        context.update(
            report=report,
            chart=charts.rate_grid_svg(histogram=report["rate_histogram"], flagged=report["flagged"]),
        )
    return render(request, "clinical/drift_detail.html", context)


@role_required(can_read_labels)
def protected_index(request):
    return render(request, "clinical/protected_index.html", {"saes": selectors.explainable_saes(user=request.user)})


@role_required(can_read_labels)
@require_http_methods(["GET", "POST"])
def protected_report(request, sae_id: int):
    """The SAE's flagged latents; POST queues a rescan as a job (it encodes the whole training corpus) and
    the page follows the latest scan job the user may see."""
    sae = visible_sae(request.user, sae_id)
    status = 200
    if request.method == "POST":
        if not can_run_jobs(request.user):
            messages.error(request, "Only researchers rescan an SAE.")
            return redirect("protected-report", sae_id=sae.pk)
        try:
            job = services.protected_scan_start(sae=sae, by=request.user)
        except BrokerUnavailable:
            messages.error(request, "The job queue is not answering; nothing was queued. Try again shortly.")
            status = 503
        except ValueError as error:
            messages.error(request, str(error))
            return redirect("protected-report", sae_id=sae.pk)
        else:
            messages.success(request, f"Scan queued as job {job.pk}.")
            return redirect("protected-report", sae_id=sae.pk)
    sae.refresh_from_db(fields=["metrics"])
    latents = list(selectors.protected_latents(sae=sae))
    labels = selectors.latent_labels(sae=sae, indices=[latent.index for latent in latents], user=request.user)
    rows = [{"latent": latent, "label": labels.get(latent.index)} for latent in latents]
    return render(
        request,
        "clinical/protected_report.html",
        {
            "sae": sae,
            "rows": rows,
            "scan": sae.metrics.get("protected"),
            "scan_job": selectors.protected_scan_jobs(user=request.user, sae=sae).first(),
            "can_run": can_run_jobs(request.user),
        },
        status=status,
    )
