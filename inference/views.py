"""The researchers' jobs pages: launch capture, training, mining and sweeps; follow, cancel, compare, export.

Forms are validated by the API's own input serializers (same validation, same access policy) and
launched through the same services. Physicians and everyone else without the job-runner role get 404.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.audit import audit_record
from accounts.csv_safety import SafeCsvWriter
from accounts.permissions import can_run_jobs
from accounts.redaction import without_server_paths
from features import access as catalogue_access

from . import selectors
from .access import jobs_readable, jobs_writable, sweeps_readable
from .apis import (
    BROKER_DOWN,
    CacheActivationsInputSerializer,
    MineLatentsInputSerializer,
    SweepInputSerializer,
    TrainSAEInputSerializer,
)
from .charts import pareto_chart
from .engine.accounting import method_label
from .models import Job, Sweep
from .services import (
    ARCHITECTURES,
    BrokerUnavailable,
    cache_activations_request,
    job_cancel,
    mine_latents_request,
    sweep_launch,
    train_sae_request,
)

LAUNCHERS = {
    "capture": (CacheActivationsInputSerializer, cache_activations_request),
    "train": (TrainSAEInputSerializer, train_sae_request),
    "mine": (MineLatentsInputSerializer, mine_latents_request),
    "sweep": (SweepInputSerializer, sweep_launch),
}
LIST_FIELDS = ("widths", "ks", "l1s")


def job_runners_only(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not can_run_jobs(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapped


def _visible_jobs(request):
    return jobs_readable(request.user)


def _choices(request) -> dict:
    """The launch forms offer exactly the rows the API's input fields accept (features.access)."""
    user = request.user
    return {
        "host_models": catalogue_access.host_models_writable(user).order_by("name"),
        "corpora": catalogue_access.corpora_writable(user).order_by("name"),
        "activation_sets": catalogue_access.activation_sets_writable(user)
        .select_related("hook_point", "corpus")
        .order_by("-pk"),
        "saes": catalogue_access.saes_writable(user).select_related("hook_point").order_by("-pk"),
        "architectures": ARCHITECTURES,
    }


def _page(request, *, errors: dict | None = None, form: str = "", data=None, status: int = 200):
    jobs = selectors.jobs_for_page(
        queryset=_visible_jobs(request), kind=request.GET.get("kind") or None, status=request.GET.get("status") or None
    )[:100]
    sweeps = sweeps_readable(request.user).select_related("activation_set")[:20]
    context = {
        "jobs": jobs,
        "sweeps": sweeps,
        "errors": errors or {},
        "failed_form": form,
        "data": data or {},
        "kinds": Job.Kind.choices,
        "statuses": Job.Status.choices,
        **_choices(request),
    }
    return render(request, "inference/jobs.html", context, status=status)


@job_runners_only
def jobs_page(request):
    return _page(request)


def _form_data(post) -> dict:
    data = {key: value for key, value in post.items() if key != "csrfmiddlewaretoken" and value != ""}
    for name in LIST_FIELDS:
        if name in data:
            data[name] = [part.strip() for part in data[name].replace(";", ",").split(",") if part.strip()]
    return data


@job_runners_only
@require_POST
def job_launch(request, what: str):
    if what not in LAUNCHERS:
        raise Http404("No such job.")
    serializer_class, service = LAUNCHERS[what]
    data = _form_data(request.POST)
    form = serializer_class(data=data, context={"request": request})
    if not form.is_valid():
        return _page(
            request, errors={k: [str(e) for e in v] for k, v in form.errors.items()}, form=what, data=data, status=400
        )
    try:
        launched = service(by=request.user, **form.validated_data)
    except BrokerUnavailable:
        return _page(request, errors={"detail": [BROKER_DOWN]}, form=what, data=data, status=503)
    except ValueError as error:
        return _page(request, errors={"detail": [str(error)]}, form=what, data=data, status=400)
    if isinstance(launched, Sweep):
        messages.success(request, f"Sweep {launched.pk} queued: {launched.jobs.count()} training jobs.")
        return redirect("sweep-page", sweep_id=launched.pk)
    messages.success(request, f"Job {launched.pk} queued on the {launched.queue} queue.")
    return redirect("job-page", job_id=launched.pk)


@job_runners_only
def job_page(request, job_id: int):
    job = get_object_or_404(_visible_jobs(request).select_related("created_by", "sweep"), pk=job_id)
    return render(request, "inference/job_detail.html", {"job": job, "footprint": selectors.job_footprint(job)})


@job_runners_only
@require_POST
def job_cancel_view(request, job_id: int):
    job = get_object_or_404(jobs_writable(request.user), pk=job_id)
    try:
        job_cancel(job=job, by=request.user)
        messages.success(request, f"Job {job.pk} cancelled.")
    except ValueError as error:
        messages.error(request, str(error))
    return redirect("job-page", job_id=job.pk)


@job_runners_only
def jobs_progress(request):
    """Live progress for the bars: ?ids=1,2,3 (only jobs the user may follow)."""
    ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:200]
    rows = (
        _visible_jobs(request)
        .filter(pk__in=ids)
        .values(
            "id",
            "status",
            "progress",
            "message",
            "attempts",
            "device",
            "device_seconds",
            "energy_kwh",
            "energy_method",
            "co2_kg",
            "cost",
            "log_tail",
        )
    )
    return JsonResponse(
        {
            "jobs": [
                {
                    **row,
                    "energy_method_label": method_label(row["energy_method"]) if row["energy_method"] else "—",
                    "message": without_server_paths(row["message"]),
                    "log_tail": without_server_paths(row["log_tail"][-4000:]),
                }
                for row in rows
            ]
        }
    )


@job_runners_only
def sae_compute(request, sae_id: int):
    sae = get_object_or_404(catalogue_access.saes_readable(request.user).select_related("activation_set"), pk=sae_id)
    parts = selectors.sae_jobs(sae=sae)
    visible = set(_visible_jobs(request).values_list("pk", flat=True))
    return render(
        request,
        "inference/sae_compute.html",
        {
            "sae": sae,
            "footprint": selectors.sae_footprint(sae=sae),
            "parts": [(name, [job for job in jobs if job.pk in visible]) for name, jobs in parts.items()],
        },
    )


@job_runners_only
def sweep_page(request, sweep_id: int):
    sweep = get_object_or_404(sweeps_readable(request.user).select_related("activation_set"), pk=sweep_id)
    rows = selectors.sweep_comparison(sweep=sweep)
    return render(
        request,
        "inference/sweep.html",
        {
            "sweep": sweep,
            "rows": rows,
            "chart": pareto_chart(rows),
            "footprint": selectors.sweep_footprint(sweep=sweep),
            "jobs": sweep.jobs.order_by("pk"),
        },
    )


TOTAL_KEYS = ("n_jobs", "device_seconds", "energy_kwh", "method", "co2_kg", "cost")
TOTAL_COLUMNS = ["n_jobs", "device_seconds", "energy_kwh", "energy_method", "co2_kg", "cost"]  # TOTAL_KEYS' headers
PARTS = ("capture", "training", "mining")
SWEEP_COLUMNS = [
    "sweep_id",
    "uuid",
    "name",
    "activation_set_id",
    *TOTAL_COLUMNS,
    *(f"{part}_device_seconds" for part in PARTS),
]
SAE_COLUMNS = ["sae_id", "name", "sweep_group", *TOTAL_COLUMNS]


@job_runners_only
def jobs_export(request):
    """CSV of every job the user may follow with its compute, energy, CO₂ and cost; ?by=sae for SAE totals,
    ?by=sweep for sweep totals (each sweep's capture counted once)."""
    response = HttpResponse(content_type="text/csv")
    writer = SafeCsvWriter(response)  # SAE names and sweep groups are user text: never a live formula
    by = request.GET.get("by") if request.GET.get("by") in ("sae", "sweep") else "job"
    audit_record(actor=request.user, action="export.jobs_compute", payload={"by": by})
    if by == "sweep":
        response["Content-Disposition"] = 'attachment; filename="sweep-compute.csv"'
        writer.writerow(SWEEP_COLUMNS)
        for sweep in sweeps_readable(request.user).select_related("activation_set").order_by("pk"):
            compute = selectors.sweep_footprint(sweep=sweep)
            writer.writerow(
                [sweep.pk, sweep.uuid, sweep.name, sweep.activation_set_id]
                + [compute["total"][key] for key in TOTAL_KEYS]
                + [compute["parts"][part]["device_seconds"] for part in PARTS]
            )
        return response
    if by == "sae":
        response["Content-Disposition"] = 'attachment; filename="sae-compute.csv"'
        writer.writerow(SAE_COLUMNS)
        for sae in catalogue_access.saes_readable(request.user).select_related("activation_set").order_by("pk"):
            total = selectors.sae_footprint(sae=sae)["total"]
            writer.writerow([sae.pk, sae.name, sae.sweep_group] + [total[key] for key in TOTAL_KEYS])
        return response
    response["Content-Disposition"] = 'attachment; filename="jobs-compute.csv"'
    writer.writerow(
        [
            "job_id",
            "uuid",
            "kind",
            "status",
            "queue",
            "device",
            "attempts",
            "device_seconds",
            "gpu_seconds",
            "energy_kwh",
            "energy_method",
            "co2_kg",
            "cost",
            "sweep_id",
            "created_at",
            "finished_at",
        ]
    )
    for job in _visible_jobs(request).order_by("pk"):
        writer.writerow(
            [
                job.pk,
                job.uuid,
                job.kind,
                job.status,
                job.queue,
                job.device,
                job.attempts,
                job.device_seconds,
                job.gpu_seconds,
                job.energy_kwh,
                job.energy_method,
                job.co2_kg,
                job.cost,
                job.sweep_id or "",
                job.created_at.isoformat(),
                job.finished_at.isoformat() if job.finished_at else "",
            ]
        )
    return response
