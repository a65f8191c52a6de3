"""Reads for the jobs pages and exports: what each job, SAE and sweep cost, and how a sweep's SAEs compare."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from features.models import SAE

from .engine.accounting import Footprint, sum_footprints
from .models import Job, Sweep


def job_footprint(job: Job) -> Footprint:
    return Footprint(
        device_seconds=job.device_seconds,
        energy_kwh=job.energy_kwh,
        method=job.energy_method or "estimated",
        co2_kg=job.co2_kg,
        cost=job.cost,
    )


def _total(jobs: list[Job]) -> dict[str, Any]:
    counted = [job for job in jobs if job.attempts > 0]
    total = sum_footprints([job_footprint(job) for job in counted]) if counted else Footprint(0, 0, "estimated", 0, 0)
    return {**total.to_dict(), "method_label": total.method_label, "n_jobs": len(counted)}


def sae_jobs(*, sae: SAE) -> dict[str, list[Job]]:
    """The capture, training and mining jobs behind one SAE."""
    capture = []
    if sae.activation_set_id and sae.activation_set.source_job_id:
        capture = list(Job.objects.filter(pk=sae.activation_set.source_job_id))
    training = list(Job.objects.filter(pk=sae.source_job_id)) if sae.source_job_id else []
    mining = list(Job.objects.filter(kind=Job.Kind.MINE_LATENTS, parameters__sae_id=sae.pk))
    return {"capture": capture, "training": training, "mining": mining}


def sae_footprint(*, sae: SAE) -> dict[str, Any]:
    """Device time, energy, CO₂ and cost of one SAE: capture + training + mining, and each part."""
    parts = sae_jobs(sae=sae)
    return {
        "parts": {name: _total(jobs) for name, jobs in parts.items()},
        "total": _total([job for jobs in parts.values() for job in jobs]),
    }


def sweep_footprint(*, sweep: Sweep) -> dict[str, Any]:
    """A sweep's training and mining jobs, plus the capture of its activation set (counted once)."""
    jobs = list(sweep.jobs.all())
    capture = (
        list(Job.objects.filter(pk=sweep.activation_set.source_job_id)) if sweep.activation_set.source_job_id else []
    )
    return {
        "parts": {
            "capture": _total(capture),
            "training": _total([j for j in jobs if j.kind == Job.Kind.TRAIN_SAE]),
            "mining": _total([j for j in jobs if j.kind == Job.Kind.MINE_LATENTS]),
        },
        "total": _total(capture + jobs),
    }


def sweep_saes(*, sweep: Sweep) -> QuerySet:
    return SAE.objects.filter(sweep_group=sweep.group).order_by("d_sae", "k", "l1_coefficient", "pk")


def sweep_comparison(*, sweep: Sweep) -> list[dict[str, Any]]:
    """One row per SAE of the sweep: FVE, L0, dead fraction, monosemanticity, and its job's state."""
    rows = []
    trainings = {job.pk: job for job in sweep.jobs.filter(kind=Job.Kind.TRAIN_SAE)}
    mined = set(
        sweep.jobs.filter(kind=Job.Kind.MINE_LATENTS, status=Job.Status.SUCCEEDED).values_list(
            "parameters__sae_id", flat=True
        )
    )
    for sae in sweep_saes(sweep=sweep):
        metrics = sae.metrics or {}
        mono = metrics.get("monosemanticity") or {}
        rows.append(
            {
                "sae": sae,
                "width": sae.d_sae,
                "k": sae.k,
                "l1": sae.l1_coefficient,
                "fve": metrics.get("fve"),
                "l0": metrics.get("l0"),
                "dead_fraction": metrics.get("dead_fraction"),
                "mono_entropy": mono.get("sae_mean_entropy"),
                "mono_r": mono.get("n_latents_r_ge_0_5"),
                "mined": sae.pk in mined,
                "job": trainings.get(sae.source_job_id),
                "footprint": sae_footprint(sae=sae)["total"],
            }
        )
    return rows


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower L0 (x) and higher FVE (y)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((xo <= x and yo >= y) and (xo < x or yo > y) for j, (xo, yo) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def jobs_for_page(*, queryset: QuerySet, kind: str | None = None, status: str | None = None) -> QuerySet:
    jobs = queryset.select_related("created_by", "sweep")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def sweeps_visible(*, jobs: QuerySet) -> QuerySet:
    """Sweeps with at least one job the user may follow (the same policy as the jobs themselves)."""
    return Sweep.objects.filter(Q(jobs__in=jobs)).distinct().select_related("activation_set")
