"""Jobs: create and send on commit, run under a lease, finish once; the sweeper; job requests of each kind."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.audit import audit_record

from .broker import BrokerUnavailable, broker_check, jobs_on_broker, send_job
from .drift import drift_config_check
from .models import Job, Sweep
from .progress import (
    JobCancelled,
    JobReporter,
    Progress,
    lease_deadline,
    log_append,
    worker_is_dead_sibling,
    worker_name,
)
from .registry import Work, job_kind
from .uploads import upload_discard, upload_store

logger = logging.getLogger(__name__)
__all__ = ["BrokerUnavailable", "JobCancelled", "Progress", "upload_discard", "upload_store"]


def _send(job: Job) -> None:
    """Hand a job to the workers now; a broker that fails here leaves the job for the sweeper."""
    from celery import current_app

    if current_app.conf.task_always_eager:
        job_run(job_id=job.pk)
        return
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(sent_at=timezone.now())
    try:
        send_job(job_id=job.pk, job_uuid=job.uuid, queue=job.queue)
    except Exception as error:  # noqa: BLE001 - the row stays queued and sent_at set: the sweeper re-sends it
        logger.warning("job %s could not be sent (%s); the sweeper will re-send it", job.pk, error)
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            message="the job queue did not take the job; it will be re-sent"
        )


def job_create(*, kind: str, parameters: dict[str, Any], by=None, enqueue: bool = True, sweep=None) -> Job:
    """Create a Job row and, once the transaction commits, hand it to a worker.

    With `enqueue`, the broker is asked first: when it does not answer, BrokerUnavailable is raised and
    no row is written (the API answers 503). A broker that fails between that check and the send leaves
    a queued row that the sweeper re-sends.
    """
    spec = job_kind(kind)
    if enqueue:
        broker_check()
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            parameters=parameters,
            queue=spec.queue,
            sweep=sweep,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        audit_record(actor=by, action=f"job.create.{kind}", obj=job, payload=parameters)
        if enqueue:
            transaction.on_commit(lambda: _send(job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Hand an existing queued job to the workers once the current transaction commits."""
    transaction.on_commit(lambda: _send(job))


def job_cancel(*, job: Job, by) -> Job:
    # Conditional on the status: a job that finished meanwhile (even in the same instant) stays finished.
    updated = Job.objects.filter(pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.CANCELLED, message="cancelled", finished_at=timezone.now(), lease_expires_at=None
    )
    if not updated:
        job.refresh_from_db()
        raise ValueError(f"job {job.pk} has already finished ({job.status})")
    audit_record(actor=by, action="job.cancel", obj=job)
    job.refresh_from_db()
    return job


def job_claim(*, job: Job, worker: str, node: str | None = None) -> bool:
    """queued → running under `worker` with a fresh lease, in one conditional update. A running job can
    be claimed only when its lease expired or its holder was a process of this node that died; the
    attempt counter makes the update a compare-and-set, so two workers never both win."""
    now = timezone.now()
    claimable = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_expires_at__lt=now)
    if job.status == Job.Status.RUNNING and worker_is_dead_sibling(job.worker, node):
        claimable |= Q(status=Job.Status.RUNNING, worker=job.worker)
    candidates = Job.objects.filter(claimable, pk=job.pk, attempts=job.attempts)
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        gave_up = candidates.update(
            status=Job.Status.FAILED,
            finished_at=now,
            lease_expires_at=None,
            message=f"gave up after {job.attempts} attempts (JOB_MAX_ATTEMPTS={settings.JOB_MAX_ATTEMPTS}); "
            f"last worker: {job.worker or 'none'}",
        )
        if gave_up:
            audit_record(actor=None, action=f"job.fail.{job.kind}", obj=job, payload={"error": "attempts exhausted"})
        return False
    resumed = f" (attempt {job.attempts + 1})" if job.attempts else ""
    return bool(
        candidates.update(
            status=Job.Status.RUNNING,
            worker=worker,
            lease_expires_at=lease_deadline(),
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
            message=f"started{resumed}",
            log_tail=log_append(f"started{resumed} on {worker}"),
        )
    )


class _Settlement:
    """This run's device time, energy, CO₂ and cost, added to the job once (all attempts count), in the
    same update that finishes the job, so that a finished job always shows what it cost."""

    def __init__(self, meter) -> None:
        self.meter = meter
        self.done = False

    def __call__(self, device: str) -> dict[str, Any]:
        if self.done:
            return {}
        self.done = True
        seconds, joules, method = self.meter.stop(device=device or "cpu")
        return _accounting_fields(device=device or "cpu", seconds=seconds, joules=joules, method=method)


def _accounting_fields(*, device: str, seconds: float, joules: float | None, method: str) -> dict[str, Any]:
    from .engine.accounting import footprint, is_gpu

    gpu = is_gpu(device)
    cost = footprint(
        device_seconds=seconds,
        energy_joules=joules,
        method=method,
        watts=settings.GPU_POWER_WATTS if gpu else settings.CPU_POWER_WATTS,
        carbon_intensity_kg_per_kwh=settings.CARBON_INTENSITY_KG_PER_KWH,
        device_hour_price=settings.GPU_HOUR_PRICE if gpu else settings.CPU_HOUR_PRICE,
    )
    fields: dict[str, Any] = {
        "device_seconds": F("device_seconds") + cost.device_seconds,
        "energy_kwh": F("energy_kwh") + cost.energy_kwh,
        "co2_kg": F("co2_kg") + cost.co2_kg,
        "cost": F("cost") + cost.cost,
        "energy_method": cost.method,
    }
    if gpu:
        fields["gpu_seconds"] = F("gpu_seconds") + cost.device_seconds
    return fields


def job_run(*, job_id: int, work: Work | None = None, echo: Progress | None = None, node: str | None = None) -> Job:
    """Run a job's body under a lease: claim, heartbeat, then succeeded | failed, each a conditional
    update. A finished job, or one whose lease another live worker holds, is left alone: a redelivered
    or duplicated message does no harm. A reclaimed job resumes from its checkpoint.

    `node` is the Celery worker's name; None means a management command's own process, where a Ctrl-C
    (KeyboardInterrupt) ends the job `cancelled` ("interrupted") instead of leaving it to the sweeper."""
    from .engine.accounting import EnergyMeter

    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    worker = worker_name(node)
    if not job_claim(job=job, worker=worker, node=node):
        job.refresh_from_db()
        logger.info("job %s not claimed (%s, held by %s)", job_id, job.status, job.worker)
        return job
    job.refresh_from_db()
    work = work or job_kind(job.kind).work
    # NVML is read (without torch) for jobs that may use a GPU; it answers None where there is none.
    settle = _Settlement(EnergyMeter().start(gpu=job.queue == "gpu" or "cuda" in settings.CONCORD_DEVICE))
    reporter = JobReporter(job_id, worker=worker, echo=echo, settle=settle)
    reporter.start_heartbeat()
    try:
        result = work(job, reporter)
    except JobCancelled:
        logger.info("job %s stopped: no longer running under %s", job_id, worker)
    except KeyboardInterrupt:
        if node is not None:  # a Celery worker's process: the lease and the sweeper take it from here
            raise
        # A command run here stopped by Ctrl-C: the person who started it stopped it. The job ends
        # cancelled, so the sweeper never hands it to a worker once its lease runs out.
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, worker=worker).update(
            status=Job.Status.CANCELLED,
            message="interrupted (Ctrl-C) while running in a command",
            log_tail=log_append(f"interrupted (Ctrl-C) on {worker}"),
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        raise
    except Exception as error:
        logger.exception("job %s failed", job_id)
        device = Job.objects.filter(pk=job_id).values_list("device", flat=True).first() or ""
        failed = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, worker=worker).update(
            **settle(device),
            status=Job.Status.FAILED,
            message=f"{type(error).__name__}: {error}"[:2000],
            log_tail=log_append(traceback.format_exc()[-4000:]),
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        if failed:
            audit_record(actor=job.created_by, action=f"job.fail.{job.kind}", obj=job, payload={"error": str(error)})
    else:
        if not reporter.result_written:
            try:
                with reporter.commit(result or {}):
                    pass
            except JobCancelled:
                logger.info("job %s finished its work but was cancelled meanwhile; result dropped", job_id)
        if reporter.result_written:
            audit_record(actor=job.created_by, action=f"job.succeed.{job.kind}", obj=job, payload=result or {})
            _follow_up(job_id=job_id)
    finally:
        reporter.stop_heartbeat()
        if not settle.done:  # stopped by a cancel or a lost lease: the time spent still counts
            device = Job.objects.filter(pk=job_id).values_list("device", flat=True).first() or ""
            Job.objects.filter(pk=job_id, worker=worker).update(**settle(device))
    job.refresh_from_db()
    return job


def _follow_up(*, job_id: int) -> None:
    """A sweep's training job, once succeeded, queues the mining of its SAE (once: the sweeper repairs a
    follow-up lost to a crash between the two)."""
    job = Job.objects.select_related("sweep").get(pk=job_id)
    if job.kind != Job.Kind.TRAIN_SAE or job.sweep is None or not job.result.get("sae_id"):
        return
    with transaction.atomic():
        Job.objects.select_for_update().get(pk=job_id)  # one follow-up at a time per training job
        if Job.objects.filter(
            kind=Job.Kind.MINE_LATENTS, sweep=job.sweep, parameters__sae_id=job.result["sae_id"]
        ).exists():
            return
        mine = job_create(
            kind=Job.Kind.MINE_LATENTS,
            by=job.created_by,
            sweep=job.sweep,
            enqueue=False,
            parameters={"sae_id": job.result["sae_id"], "n_top": job.sweep.parameters.get("n_top", 20)},
        )
        job_enqueue(job=mine)  # a broker down now leaves it queued with sent_at set: the sweeper sends it


def jobs_sweep() -> dict[str, int]:
    """The reaper, run by Celery beat every JOB_SWEEP_SECONDS.

    - A running job whose lease expired (its worker died or hangs) goes back to queued and is re-sent,
      or fails, saying why, once it has used JOB_MAX_ATTEMPTS runs.
    - A queued job sent more than JOB_QUEUED_GRACE_SECONDS ago whose message no worker claimed and the
      broker no longer holds (a restarted Redis without persistence, a failed send) is re-sent.
    - A sweep's succeeded training job without its mining job gets one.
    Every change is conditional on the state read, so two sweepers (or a sweeper and a worker) never
    both act on a job.
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "resent": 0, "followed_up": 0}
    for job in Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now):
        same = Job.objects.filter(
            pk=job.pk, status=Job.Status.RUNNING, worker=job.worker, lease_expires_at=job.lease_expires_at
        )
        why = f"lease expired at {job.lease_expires_at:%H:%M:%S} on {job.worker or 'an unknown worker'}"
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            if same.update(
                status=Job.Status.FAILED,
                finished_at=now,
                lease_expires_at=None,
                message=f"failed: {why}; gave up after {job.attempts} attempts "
                f"(JOB_MAX_ATTEMPTS={settings.JOB_MAX_ATTEMPTS})",
            ):
                counts["failed"] += 1
                audit_record(actor=None, action=f"job.fail.{job.kind}", obj=job, payload={"error": why})
        elif same.update(
            status=Job.Status.QUEUED,
            lease_expires_at=None,
            sent_at=now,
            message=f"{why}; re-sent (attempt {job.attempts + 1} of {settings.JOB_MAX_ATTEMPTS})",
            log_tail=log_append(f"{why}; re-sent"),
        ):
            counts["requeued"] += 1
            logger.warning("job %s: %s; re-sent", job.pk, why)
            _send_now(job)
    grace = now - timedelta(seconds=settings.JOB_QUEUED_GRACE_SECONDS)
    waiting = list(Job.objects.filter(status=Job.Status.QUEUED, sent_at__lt=grace))
    try:
        # A reservation older than the grace of a job still queued was prefetched by a worker that never
        # started it (killed whole): lost, not held.
        held = jobs_on_broker([str(job.uuid) for job in waiting], reserved_after=grace.timestamp())
    except Exception:  # noqa: BLE001 - the broker is down: nothing can be re-sent now anyway
        logger.warning("the sweeper could not reach the broker; %d queued jobs wait", len(waiting))
        return counts
    for job in waiting:
        if held is not None and str(job.uuid) in held:
            continue
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, sent_at=job.sent_at).update(
            sent_at=now,
            message="re-sent: its message was lost before a worker took it",
            log_tail=log_append("re-sent: its message was lost before a worker took it"),
        ):
            counts["resent"] += 1
            _send_now(job)
    mined = {
        sae_id
        for sae_id in Job.objects.filter(kind=Job.Kind.MINE_LATENTS, sweep__isnull=False).values_list(
            "parameters__sae_id", flat=True
        )
    }
    for job in Job.objects.filter(
        kind=Job.Kind.TRAIN_SAE, status=Job.Status.SUCCEEDED, sweep__isnull=False, finished_at__lt=grace
    ):
        if job.result.get("sae_id") and job.result["sae_id"] not in mined:
            _follow_up(job_id=job.pk)
            counts["followed_up"] += 1
    return counts


def _send_now(job: Job) -> None:
    try:
        send_job(job_id=job.pk, job_uuid=job.uuid, queue=job.queue)
    except Exception as error:  # noqa: BLE001 - the next sweep tries again (the job stays queued)
        logger.warning("job %s could not be re-sent: %s", job.pk, error)


ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu", "matryoshka")


def host_model_resolve(*, model: str, by=None):
    """A registered host model by name, or a Hugging Face id / local path registered on first use."""
    from features.models import HostModel
    from features.services import host_model_register

    found = HostModel.objects.filter(name=model).first() or HostModel.objects.filter(source=model).first()
    if found is not None:
        return found
    from transformers import (
        AutoConfig,  # config only: no weights are loaded in this process
    )

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ValueError(f"'{model}' is neither a registered host model nor a loadable model: {error}") from None
    architectures = getattr(config, "architectures", None) or []
    causal = bool(getattr(config, "is_decoder", False)) or any(
        name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures
    )
    d_model = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    n_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    return host_model_register(
        name=model,
        source=model,
        kind="causal" if causal else "encoder",
        d_model=int(d_model),
        n_layers=int(n_layers),
        by=by,
    )


def cache_activations_request(
    *,
    host_model,
    hook_name: str,
    corpus,
    by=None,
    batch_size: int = 32,
    max_length: int = 128,
    dtype: str = "float16",
    enqueue: bool = True,
) -> Job:
    from features.services import hook_point_get_or_create

    if batch_size < 1 or max_length < 2:
        raise ValueError("batch_size must be ≥ 1 and max_length ≥ 2")
    if dtype not in ("float16", "float32"):
        raise ValueError("dtype must be float16 or float32")
    hook_point = hook_point_get_or_create(host_model=host_model, name=hook_name, by=by)
    return job_create(
        kind=Job.Kind.CACHE_ACTIVATIONS,
        by=by,
        enqueue=enqueue,
        parameters={
            "host_model_id": host_model.pk,
            "hook_point_id": hook_point.pk,
            "corpus_id": corpus.pk,
            "batch_size": batch_size,
            "max_length": max_length,
            "dtype": dtype,
        },
    )


def train_sae_request(
    *,
    arch: str,
    width: int,
    activation_set=None,
    activations_path: str | None = None,
    k: int | None = None,
    l1: float | None = None,
    steps: int = 2000,
    batch_size: int = 4096,
    lr: float | None = None,
    seed: int = 0,
    device: str | None = None,
    out: str | None = None,
    name: str | None = None,
    checkpoint_every: int = 500,
    sweep_group: str = "",
    by=None,
    enqueue: bool = True,
    sweep: Sweep | None = None,
    ce_texts: int | None = None,
) -> Job:
    """Validate a training request (cheaply: the web process never loads torch) and queue the job.
    ce_texts: snippets of the training corpus over which a causal host's CE-loss recovered is measured
    after training (default 64)."""
    if (activation_set is None) == (activations_path is None):
        raise ValueError("give exactly one of an activation set or an activations .npy file")
    if activations_path is not None and not Path(activations_path).is_file():
        raise ValueError(f"{activations_path}: no such file")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{arch}'; choose one of {', '.join(ARCHITECTURES)}")
    if width < 1:
        raise ValueError("width must be a positive number of latents")
    if arch in ("topk", "batchtopk", "matryoshka") and k is not None and not 1 <= k <= width:
        raise ValueError(f"k must be between 1 and the width ({width})")
    if l1 is not None and l1 < 0:
        raise ValueError("the sparsity coefficient must be ≥ 0")
    if steps < 1 or batch_size < 1 or (lr is not None and lr <= 0) or checkpoint_every < 1:
        raise ValueError("steps, batch size and checkpoint interval must be ≥ 1 and the learning rate > 0")
    if ce_texts is not None and ce_texts < 1:
        raise ValueError("ce_texts must be ≥ 1")
    extra = {"ce_texts": ce_texts} if ce_texts is not None else {}
    return job_create(
        kind=Job.Kind.TRAIN_SAE,
        by=by,
        enqueue=enqueue,
        sweep=sweep,
        parameters={
            "activation_set_id": activation_set.pk if activation_set is not None else None,
            "activations_path": str(Path(activations_path).resolve()) if activations_path else None,
            "arch": arch,
            "width": width,
            "k": k,
            "l1": l1,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "device": device,
            "out": out,
            "name": name,
            "checkpoint_every": checkpoint_every,
            "sweep_group": sweep_group,
            **extra,
        },
    )


SPARSE_BY_K = ("topk", "batchtopk", "matryoshka")
MAX_SWEEP_POINTS = 64


def sweep_launch(
    *,
    activation_set,
    arch: str,
    widths: list[int],
    ks: list[int] | None = None,
    l1s: list[float] | None = None,
    name: str = "",
    steps: int = 2000,
    batch_size: int = 4096,
    lr: float = 2e-4,
    seed: int = 0,
    checkpoint_every: int = 500,
    n_top: int = 20,
    by=None,
    enqueue: bool = True,
) -> Sweep:
    """One request, a grid: a training job per (width, k) or (width, L1) on the GPU queue, each mined
    when it succeeds (see `_follow_up`). All rows are written in one transaction, or none."""
    sparsities: list[Any] = list(ks or []) if arch in SPARSE_BY_K else list(l1s or [])
    if not widths:
        raise ValueError("give at least one width")
    if not sparsities:
        raise ValueError("give at least one k" if arch in SPARSE_BY_K else "give at least one L1 coefficient")
    if len(widths) * len(sparsities) > MAX_SWEEP_POINTS:
        raise ValueError(
            f"a sweep trains at most {MAX_SWEEP_POINTS} SAEs; this grid has {len(widths) * len(sparsities)}"
        )
    if enqueue:
        broker_check()
    with transaction.atomic():
        sweep = Sweep.objects.create(
            name=name or f"{arch} sweep on activation set {activation_set.pk}",
            activation_set=activation_set,
            created_by=by if getattr(by, "is_authenticated", False) else None,
            parameters={
                "arch": arch,
                "widths": list(widths),
                "ks": list(ks or []),
                "l1s": list(l1s or []),
                "steps": steps,
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
                "n_top": n_top,
                "checkpoint_every": checkpoint_every,
            },
        )
        for width in sorted(set(widths)):
            for sparsity in sorted(set(sparsities)):
                by_k = arch in SPARSE_BY_K
                train_sae_request(
                    activation_set=activation_set,
                    arch=arch,
                    width=width,
                    k=sparsity if by_k else None,
                    l1=None if by_k else sparsity,
                    steps=steps,
                    batch_size=batch_size,
                    lr=lr,
                    seed=seed,
                    checkpoint_every=checkpoint_every,
                    sweep_group=sweep.group,
                    sweep=sweep,
                    by=by,
                    enqueue=False,
                    name=f"{sweep.name} · width {width} · {'k' if by_k else 'L1'} {sparsity}",
                )
        audit_record(actor=by, action="sweep.launch", obj=sweep, payload=sweep.parameters)
        if enqueue:
            for job in sweep.jobs.all():
                job_enqueue(job=job)
    return sweep


def mine_latents_request(*, sae, by=None, n_top: int = 20, enqueue: bool = True) -> Job:
    if sae.activation_set_id is None:
        raise ValueError(f"SAE {sae.pk} has no activation set to mine")
    if n_top < 1:
        raise ValueError("n_top must be ≥ 1")
    return job_create(kind=Job.Kind.MINE_LATENTS, by=by, enqueue=enqueue, parameters={"sae_id": sae.pk, "n_top": n_top})


def drift_audit_request(
    *,
    sae,
    corpus,
    reference=None,
    thresholds: dict[str, Any] | None = None,
    by=None,
    enqueue: bool = True,
) -> Job:
    """Queue a drift audit of `corpus` against `reference` (default: the SAE's training corpus); the job
    body is `inference.drift.drift_audit_work`."""
    if reference is None:
        if sae.activation_set_id is None:
            raise ValueError(f"SAE {sae.pk} has no training corpus: name a reference corpus")
        reference = sae.activation_set.corpus
    if reference.pk == corpus.pk:
        raise ValueError("the audited corpus is the reference corpus; choose another one")
    config = drift_config_check(thresholds)
    return job_create(
        kind=Job.Kind.DRIFT_AUDIT,
        by=by,
        enqueue=enqueue,
        parameters={"sae_id": sae.pk, "corpus_id": corpus.pk, "reference_id": reference.pk, "config": config},
    )


def steering_request(*, parameters: dict[str, Any], by=None, enqueue: bool = True) -> Job:
    """Queue a steering run (parameters from `inference.steering.steering_parameters`) on the `gpu` queue."""
    return job_create(kind=Job.Kind.STEER, by=by, enqueue=enqueue, parameters=parameters)


class ScanInProgress(ValueError):
    """A second protected-attribute scan of an SAE while one is queued or running (HTTP 409)."""


def protected_scan_request(*, sae, threshold: float | None = None, by=None, enqueue: bool = True) -> Job:
    """Queue a protected-attribute scan of `sae` over its training corpus (raises BrokerUnavailable, with
    no row written, when the broker does not answer); the job body is `inference.protected`'s."""
    if sae.activation_set_id is None:
        raise ValueError(f"SAE {sae.pk} has no training corpus to scan")
    if threshold is not None and not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    running = (
        Job.objects.filter(kind=Job.Kind.PROTECTED_SCAN, parameters__sae_id=sae.pk)
        .exclude(status__in=Job.FINAL_STATUSES)
        .values_list("pk", flat=True)
        .first()
    )
    if running is not None:
        raise ScanInProgress(f"a protected-attribute scan of SAE {sae.pk} is already under way (job {running})")
    parameters: dict[str, Any] = {"sae_id": sae.pk}
    if threshold is not None:
        parameters["threshold"] = float(threshold)
    return job_create(kind=Job.Kind.PROTECTED_SCAN, by=by, enqueue=enqueue, parameters=parameters)


def sae_import(
    *,
    directory: Path,
    name: str | None = None,
    host_model=None,
    hook_name: str | None = None,
    activation_set=None,
    by=None,
):
    """Register an SAELens-format directory: validated by loading it, then copied into the artifact store."""
    import shutil

    from features.services import hook_point_get_or_create, sae_register
    from inference.engine.formats import CFG_FILENAME, WEIGHTS_FILENAME, load_sae

    loaded = load_sae(directory)  # raises SAEFormatError naming what is wrong
    metadata = loaded.metadata or {}
    if activation_set is not None:
        hook_point = activation_set.hook_point
    else:
        hook_name = hook_name or metadata.get("hook_name")
        model_name = host_model or metadata.get("model_name")
        if not hook_name or not model_name:
            raise ValueError("the directory names no model_name/hook_name in its metadata: pass --model and --hook")
        host = model_name if not isinstance(model_name, str) else _host_model_by_id(model_name, by=by)
        hook_point = hook_point_get_or_create(host_model=host, name=hook_name, by=by)
    if hook_point.host_model.d_model != loaded.sae.d_in:
        raise ValueError(
            f"the SAE reads d_in={loaded.sae.d_in} but {hook_point} has d_model={hook_point.host_model.d_model}"
        )
    name = name or Path(directory).resolve().name
    target = Path(settings.ARTIFACT_ROOT) / "saes" / f"imported-{timezone.now():%Y%m%d%H%M%S%f}"
    # Only the two files the format defines: anything else there (a pickled .pt, scripts) stays behind.
    target.mkdir(parents=True)
    for filename in (CFG_FILENAME, WEIGHTS_FILENAME):
        shutil.copy2(Path(directory) / filename, target / filename)
    cfg = loaded.sae.cfg
    return sae_register(
        name=name,
        hook_point=hook_point,
        activation_set=activation_set,
        architecture=loaded.sae.architecture,
        d_in=cfg.d_in,
        d_sae=cfg.d_sae,
        k=getattr(cfg, "k", None),
        artifact_uri=str(target),
        normalisation=loaded.normalisation.to_dict(),
        hyperparameters=cfg.to_dict(),
        metrics=metadata.get("metrics", {}),
        by=by,
    )


def _host_model_by_id(model: str, *, by=None):
    """A registered host model whose name, source or public id (exports name models by id) is model."""
    from features.models import HostModel
    from inference.engine.host_models import model_id

    found = HostModel.objects.filter(name=model).first() or HostModel.objects.filter(source=model).first()
    found = found or next((host for host in HostModel.objects.all() if model_id(host.source) == model), None)
    return found or host_model_resolve(model=model, by=by)


def sae_export(*, sae, directory: Path, fold: bool = True, by=None) -> tuple[Path, list[str]]:
    """Write an SAE as a SAELens directory for other tools; refuses to overwrite a non-empty folder.

    fold (default) stores weights that read raw activations; unfolded, the returned warnings say
    that the weights expect normalised inputs. The model is named by its id, never a local path."""
    from inference.engine.formats import export_sae_directory
    from inference.engine.host_models import model_id

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} exists and is not empty")
    source = Path(sae.artifact_uri)
    if not (source / "cfg.json").is_file():
        raise ValueError(f"SAE {sae.pk}'s files are missing at {source}")
    host_model = sae.hook_point.host_model
    extra = {
        "hook_name": sae.hook_point.name,
        "model_class_name": "AutoModelForCausalLM" if host_model.kind == "causal" else "AutoModel",
    }
    messages = export_sae_directory(
        source=source, target=directory, fold=fold, model_name=model_id(host_model.source), metadata=extra
    )
    audit_record(actor=by, action="sae.export", obj=sae, payload={"directory": str(directory), "folded": fold})
    return directory, messages
