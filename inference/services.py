"""Jobs: create and enqueue on commit, run with progress reporting, record success or failure."""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import audit_record

from .models import Job

logger = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
Work = Callable[[Job, Progress], dict[str, Any]]

QUEUE_OF_KIND = {
    Job.Kind.IMPORT_CORPUS: "cpu",
    Job.Kind.CACHE_ACTIVATIONS: "gpu",
    Job.Kind.TRAIN_SAE: "gpu",
    Job.Kind.MINE_LATENTS: "gpu",
    Job.Kind.DRIFT_AUDIT: "gpu",
}


class JobCancelled(Exception):
    """Raised inside a running job when someone cancelled it."""


def _enqueue(job: Job) -> None:
    from . import tasks  # tasks import this module; import late to keep one direction at load time

    task = tasks.TASK_OF_KIND[job.kind]
    task.apply_async(args=[job.pk], queue=job.queue)


def job_create(*, kind: str, parameters: dict[str, Any], by=None, enqueue: bool = True) -> Job:
    """Create a Job row and, once the transaction commits, hand it to a worker."""
    with transaction.atomic():
        job = Job.objects.create(kind=kind, parameters=parameters, queue=QUEUE_OF_KIND[kind],
                                 created_by=by if getattr(by, "is_authenticated", False) else None)
        audit_record(actor=by, action=f"job.create.{kind}", obj=job, payload=parameters)
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Hand an existing queued job to the workers once the current transaction commits."""
    transaction.on_commit(lambda: _enqueue(job))


def job_cancel(*, job: Job, by) -> Job:
    updated = Job.objects.filter(pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.CANCELLED, message="cancelled", finished_at=timezone.now()
    )
    if not updated:
        raise ValueError(f"job {job.pk} has already finished ({job.status})")
    audit_record(actor=by, action="job.cancel", obj=job)
    job.refresh_from_db()
    return job


class JobReporter:
    """The progress callback handed to pure code; writes to the Job row at most every `interval` seconds."""

    def __init__(self, job_id: int, *, interval: float = 0.5, echo: Progress | None = None) -> None:
        self.job_id = job_id
        self.interval = interval
        self.echo = echo
        self._last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.echo is not None:
            self.echo(fraction, message)
        now = time.monotonic()
        if now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        updated = Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(
            progress=fraction, message=message[:1000]
        )
        if not updated:
            raise JobCancelled(f"job {self.job_id} is no longer running")

    def record(self, **fields: Any) -> None:
        Job.objects.filter(pk=self.job_id).update(**fields)


def job_run(*, job_id: int, work: Work, echo: Progress | None = None) -> Job:
    """Run `work` for a job: running → succeeded | failed. Idempotent: a finished job is left alone,
    so a redelivered message does no harm; an unfinished one runs again and resumes from its checkpoint."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, started_at=timezone.now(),
                                         attempts=F("attempts") + 1, message="started")
    reporter = JobReporter(job_id, echo=echo)
    try:
        result = work(job, reporter)
    except JobCancelled:
        logger.info("job %s cancelled", job_id)
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the job, then logged
        logger.exception("job %s failed", job_id)
        Job.objects.filter(pk=job_id).update(
            status=Job.Status.FAILED, message=f"{type(error).__name__}: {error}"[:2000],
            log_tail=traceback.format_exc()[-8000:], finished_at=timezone.now(),
        )
        audit_record(actor=job.created_by, action=f"job.fail.{job.kind}", obj=job, payload={"error": str(error)})
    else:
        Job.objects.filter(pk=job_id).update(status=Job.Status.SUCCEEDED, progress=1.0, result=result or {},
                                             message="done", finished_at=timezone.now())
        audit_record(actor=job.created_by, action=f"job.succeed.{job.kind}", obj=job, payload=result or {})
    job.refresh_from_db()
    return job


def upload_store(*, uploaded, prefix: str) -> Path:
    """Keep an uploaded file under ARTIFACT_ROOT/uploads so that any worker can read it."""
    directory = Path(settings.ARTIFACT_ROOT) / "uploads" / f"{prefix}-{timezone.now():%Y%m%d%H%M%S%f}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(uploaded.name).name
    with path.open("wb") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    return path


ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu", "matryoshka")


def host_model_resolve(*, model: str, by=None):
    """A registered host model by name, or a Hugging Face id / local path registered on first use."""
    from features.models import HostModel
    from features.services import host_model_register

    found = HostModel.objects.filter(name=model).first() or HostModel.objects.filter(source=model).first()
    if found is not None:
        return found
    from transformers import AutoConfig  # config only: no weights are loaded in this process

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ValueError(f"'{model}' is neither a registered host model nor a loadable model: {error}") from None
    architectures = getattr(config, "architectures", None) or []
    causal = bool(getattr(config, "is_decoder", False)) or any(
        name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures)
    d_model = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    n_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    return host_model_register(name=model, source=model, kind="causal" if causal else "encoder",
                               d_model=int(d_model), n_layers=int(n_layers), by=by)


def cache_activations_request(*, host_model, hook_name: str, corpus, by=None, batch_size: int = 32,
                              max_length: int = 128, dtype: str = "float16", enqueue: bool = True) -> Job:
    from features.services import hook_point_get_or_create

    if batch_size < 1 or max_length < 2:
        raise ValueError("batch_size must be ≥ 1 and max_length ≥ 2")
    if dtype not in ("float16", "float32"):
        raise ValueError("dtype must be float16 or float32")
    hook_point = hook_point_get_or_create(host_model=host_model, name=hook_name, by=by)
    return job_create(kind=Job.Kind.CACHE_ACTIVATIONS, by=by, enqueue=enqueue, parameters={
        "host_model_id": host_model.pk, "hook_point_id": hook_point.pk, "corpus_id": corpus.pk,
        "batch_size": batch_size, "max_length": max_length, "dtype": dtype})


def train_sae_request(*, arch: str, width: int, activation_set=None, activations_path: str | None = None,
                      k: int | None = None, l1: float | None = None, steps: int = 2000, batch_size: int = 4096,
                      lr: float = 2e-4, seed: int = 0, device: str | None = None, out: str | None = None,
                      name: str | None = None, checkpoint_every: int = 500, sweep_group: str = "", by=None,
                      enqueue: bool = True) -> Job:
    """Validate a training request (cheaply: the web process never loads torch) and queue the job."""
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
    if steps < 1 or batch_size < 1 or lr <= 0 or checkpoint_every < 1:
        raise ValueError("steps, batch size and checkpoint interval must be ≥ 1 and the learning rate > 0")
    return job_create(kind=Job.Kind.TRAIN_SAE, by=by, enqueue=enqueue, parameters={
        "activation_set_id": activation_set.pk if activation_set is not None else None,
        "activations_path": str(Path(activations_path).resolve()) if activations_path else None,
        "arch": arch, "width": width, "k": k, "l1": l1, "steps": steps, "batch_size": batch_size, "lr": lr,
        "seed": seed, "device": device, "out": out, "name": name, "checkpoint_every": checkpoint_every,
        "sweep_group": sweep_group})


def mine_latents_request(*, sae, by=None, n_top: int = 20, enqueue: bool = True) -> Job:
    if sae.activation_set_id is None:
        raise ValueError(f"SAE {sae.pk} has no activation set to mine")
    if n_top < 1:
        raise ValueError("n_top must be ≥ 1")
    return job_create(kind=Job.Kind.MINE_LATENTS, by=by, enqueue=enqueue,
                      parameters={"sae_id": sae.pk, "n_top": n_top})


def sae_import(*, directory: Path, name: str | None = None, host_model=None, hook_name: str | None = None,
               activation_set=None, by=None):
    """Register an SAELens-format directory: validated by loading it, then copied into the artifact store."""
    import shutil

    from features.services import hook_point_get_or_create, sae_register
    from inference.engine.formats import load_sae

    loaded = load_sae(directory)  # raises SAEFormatError naming what is wrong
    metadata = loaded.metadata or {}
    if activation_set is not None:
        hook_point = activation_set.hook_point
    else:
        hook_name = hook_name or metadata.get("hook_name")
        model_name = host_model or metadata.get("model_name")
        if not hook_name or not model_name:
            raise ValueError("the directory names no model_name/hook_name in its metadata: pass --model and --hook")
        host = model_name if not isinstance(model_name, str) else host_model_resolve(model=model_name, by=by)
        hook_point = hook_point_get_or_create(host_model=host, name=hook_name, by=by)
    if hook_point.host_model.d_model != loaded.sae.d_in:
        raise ValueError(f"the SAE reads d_in={loaded.sae.d_in} but {hook_point} has d_model="
                         f"{hook_point.host_model.d_model}")
    name = name or Path(directory).resolve().name
    target = Path(settings.ARTIFACT_ROOT) / "saes" / f"imported-{timezone.now():%Y%m%d%H%M%S%f}"
    shutil.copytree(directory, target)
    cfg = loaded.sae.cfg
    return sae_register(
        name=name, hook_point=hook_point, activation_set=activation_set, architecture=loaded.sae.architecture,
        d_in=cfg.d_in, d_sae=cfg.d_sae, k=getattr(cfg, "k", None), artifact_uri=str(target),
        normalisation=loaded.normalisation.to_dict(), hyperparameters=cfg.to_dict(),
        metrics=metadata.get("metrics", {}), by=by,
    )


def sae_export(*, sae, directory: Path, by=None) -> Path:
    """Copy an SAE's SAELens directory out, byte for byte; refuses to overwrite a non-empty folder."""
    import shutil

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} exists and is not empty")
    source = Path(sae.artifact_uri)
    if not (source / "cfg.json").is_file():
        raise ValueError(f"SAE {sae.pk}'s files are missing at {source}")
    shutil.copytree(source, directory, dirs_exist_ok=True)
    audit_record(actor=by, action="sae.export", obj=sae, payload={"directory": str(directory)})
    return directory
