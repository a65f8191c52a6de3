"""The embedded demo: institutions, people, the shipped corpus, MiniLM activations, a TopK SAE, mined
latents, a rubric and an open calibration round — built idempotently, one stage at a time."""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Institution, Profile, Role
from annotation.models import RESERVED_CONCEPTS, Round, RubricVersion
from annotation.services import ConceptSpec, round_create, round_open, rubric_create
from features.democorpus import corpus_path, load_snippets, sample_slice
from features.democorpus.concepts import CONCEPTS, DESCRIPTIONS, GROUPS, PROTECTED_ATTRIBUTES, PROTECTED_GROUP
from features.models import SAE, ActivationSet, Corpus
from inference.models import Job
from inference.services import (
    cache_activations_request,
    host_model_resolve,
    job_enqueue,
    job_run,
    mine_latents_request,
    train_sae_request,
)

Echo = Callable[[str], None]
INSTITUTIONS = (("ALDER", "Alder General Hospital"), ("BIRCH", "Birch University Medical Center"),
                ("CEDAR", "Cedar Community Hospital"))
# (username, role, institution): 8 physicians, 2 of them senior, spread over the three sites.
PEOPLE = (
    ("coordinator", Role.COORDINATOR, "ALDER"), ("researcher", Role.RESEARCHER, "BIRCH"),
    ("dr_ash", Role.SENIOR, "ALDER"), ("dr_alba", Role.PHYSICIAN, "ALDER"), ("dr_aoki", Role.PHYSICIAN, "ALDER"),
    ("dr_bell", Role.SENIOR, "BIRCH"), ("dr_brook", Role.PHYSICIAN, "BIRCH"), ("dr_baker", Role.PHYSICIAN, "BIRCH"),
    ("dr_cole", Role.PHYSICIAN, "CEDAR"), ("dr_cruz", Role.PHYSICIAN, "CEDAR"),
)
HOOK = "blocks.3.hook_resid_post"  # MiniLM has 6 layers: a middle layer's residual stream


@dataclass(frozen=True)
class DemoHost:
    """The host model the demo studies: which one, where its residual stream is read, how it is captured."""

    name: str
    hook: str
    max_length: int
    capture_batch_size: int


# MiniLM (the default, `make run`): an encoder, so no next-token loss. Gemma 3 270M (`--host gemma`,
# needs `.[causal]`): causal, 18 layers, so layer 9 is the middle; its CE-loss recovered is reported.
HOSTS = {
    "minilm": DemoHost(name="minilm", hook=HOOK, max_length=96, capture_batch_size=64),
    "gemma": DemoHost(name="gemma", hook="blocks.9.hook_resid_post", max_length=96, capture_batch_size=16),
}


@dataclass(frozen=True)
class DemoSettings:
    """What the demo builds; `quick` is the 300-snippet slice the test suite uses."""

    quick: bool = False
    width: int = 2048
    k: int = 32
    steps: int = 800
    batch_size: int = 2048
    lr: float = 1e-3
    n_round_latents: int = 40
    overlap: int = 3
    host: str = "minilm"
    """A key of HOSTS."""

    def __post_init__(self) -> None:
        if self.host not in HOSTS:
            raise ValueError(f"unknown demo host {self.host!r}; choose one of {', '.join(HOSTS)}")

    @classmethod
    def for_quick(cls, *, host: str = "minilm") -> DemoSettings:
        return cls(quick=True, width=512, k=16, steps=150, batch_size=1024, n_round_latents=12, host=host)

    @property
    def corpus_name(self) -> str:
        return "demo-clinical-quick" if self.quick else "demo-clinical"

    @property
    def host_model(self) -> DemoHost:
        return HOSTS[self.host]


@dataclass
class DemoSummary:
    stage_seconds: dict[str, float] = field(default_factory=dict)
    new_passwords: dict[str, str] = field(default_factory=dict)
    sae_metrics: dict = field(default_factory=dict)
    round_id: int | None = None


@contextmanager
def _timed(summary: DemoSummary, stage: str, echo: Echo):
    echo(f"· {stage} …")
    start = time.perf_counter()
    yield
    summary.stage_seconds[stage] = round(time.perf_counter() - start, 2)
    echo(f"  {stage}: {summary.stage_seconds[stage]:.1f} s")


def _run(job: Job, *, via_worker: bool, progress=None, timeout: float = 1800) -> Job:
    """Run a job here (progress on the terminal) or on a worker, and wait for its outcome."""
    if not via_worker:
        job = job_run(job_id=job.pk, echo=progress)
    else:
        job_enqueue(job=job)
        deadline = time.monotonic() + timeout
        while not job.is_finished:  # polls the Job row the worker writes; no fixed sleeps
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job.pk} ({job.kind}) did not finish in {timeout:.0f} s")
            time.sleep(0.2)
            job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise RuntimeError(f"job {job.pk} ({job.kind}) {job.status}: {job.message}")
    return job


def _people(summary: DemoSummary) -> dict[str, object]:
    institutions = {code: Institution.objects.get_or_create(code=code.lower(), defaults={"name": name})[0]
                    for code, name in INSTITUTIONS}
    users = {}
    User = get_user_model()
    for username, role, site in PEOPLE:
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(9)
            user = User.objects.create_user(username=username, password=password)
            Profile.objects.create(user=user, institution=institutions[site], role=role)
            summary.new_passwords[username] = password
        users[username] = user
    if summary.new_passwords:
        path = Path(settings.VAR_DIR) / "demo_passwords.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        known = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line) if path.exists() else {}
        known.update(summary.new_passwords)
        path.write_text("".join(f"{user} {password}\n" for user, password in sorted(known.items())))
        path.chmod(0o600)
    return {"institutions": institutions, "users": users}


def _corpus(config: DemoSettings, *, via_worker: bool, by) -> Corpus:
    existing = Corpus.objects.filter(name=config.corpus_name).first()
    if existing is not None:
        return existing
    source = corpus_path()
    if config.quick:
        source = Path(settings.ARTIFACT_ROOT) / "uploads" / "demo-quick.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in sample_slice(300, seed=0)))
    from inference.services import job_create

    job = job_create(kind=Job.Kind.IMPORT_CORPUS, by=by, enqueue=False, parameters={
        "path": str(source), "name": config.corpus_name, "licence": "CC0-1.0 (synthetic, no real patients)",
        "description": "Concord's synthetic chart snippets over 17 concepts"})
    _run(job, via_worker=via_worker)
    return Corpus.objects.get(name=config.corpus_name)


DISCHARGE_CORPUS = "demo-discharge"


def _discharge_corpus(*, via_worker: bool, by) -> Corpus:
    """The shipped discharge-prose slice, for drift audits from the UI (issue 12)."""
    existing = Corpus.objects.filter(name=DISCHARGE_CORPUS).first()
    if existing is not None:
        return existing
    from features.democorpus import ood_path
    from inference.services import job_create

    job = job_create(kind=Job.Kind.IMPORT_CORPUS, by=by, enqueue=False, parameters={
        "path": str(ood_path()), "name": DISCHARGE_CORPUS, "licence": "CC0-1.0 (synthetic, no real patients)",
        "description": "Discharge-summary prose: a style shift from the chart snippets, for drift audits"})
    _run(job, via_worker=via_worker)
    return Corpus.objects.get(name=DISCHARGE_CORPUS)


def _rubric(*, by) -> RubricVersion:
    version = RubricVersion.objects.filter(rubric__name="Demo clinical concepts").order_by("-version").first()
    if version is not None:
        return version
    specs = [ConceptSpec(code=group.code, name=group.name, description=DESCRIPTIONS.get(group.code, ""))
             for group in GROUPS]
    specs += [ConceptSpec(code=concept.code, name=concept.name, parent_code=concept.parent,
                          description=DESCRIPTIONS.get(concept.code, ""), synonyms=tuple(concept.synonyms))
              for concept in CONCEPTS]
    specs += [ConceptSpec(code=code, name=name, description=DESCRIPTIONS.get(code, ""))
              for code, name in RESERVED_CONCEPTS.items()]
    specs += [ConceptSpec(code=PROTECTED_GROUP.code, name=PROTECTED_GROUP.name, protected=True,
                          description=DESCRIPTIONS[PROTECTED_GROUP.code])]
    specs += [ConceptSpec(code=attribute.code, name=attribute.name, parent_code=PROTECTED_GROUP.code, protected=True,
                          description=DESCRIPTIONS[attribute.code])
              for attribute in PROTECTED_ATTRIBUTES]
    return rubric_create(
        name="Demo clinical concepts", concepts=specs, by=by,
        description="Organ-system groups and 17 clinical concepts, plus the reserved codes.",
        guidelines=("Pick the most specific concept that explains the top examples AND the quantile samples. "
                    "Use a group code when the latent fires on several concepts of one organ system, "
                    "POLYSEMANTIC when it fires on unrelated concepts, ARTIFACT for formatting, boilerplate or "
                    "tokenisation, UNINTERPRETABLE when no pattern holds. Name the evidence in your rationale. "
                    "Race/ethnicity, sex/gender, insurance and age band are protected attributes: label a latent "
                    "that tracks one with that concept."),
    )


def _host_model_path(host: DemoHost, echo: Echo) -> Path:
    from inference.engine.host_models import gemma_path, minilm_path

    if host.name == "gemma":  # converted from the packaged GGUF once, then cached as safetensors
        return gemma_path(Path(settings.ARTIFACT_ROOT) / "host_models", progress=lambda message: echo(f"  {message}"))
    return minilm_path()


def demo_seed(*, config: DemoSettings, via_worker: bool = False, echo: Echo = print,
              progress=None) -> DemoSummary:
    """Build whatever part of the demo is missing; a second call reuses everything that exists."""
    summary = DemoSummary()
    with _timed(summary, "institutions and people", echo), transaction.atomic():
        people = _people(summary)
    researcher, coordinator = people["users"]["researcher"], people["users"]["coordinator"]
    with _timed(summary, "corpus", echo):
        corpus = _corpus(config, via_worker=via_worker, by=researcher)
        _discharge_corpus(via_worker=via_worker, by=researcher)
    host = config.host_model
    with _timed(summary, "activations", echo):
        host_model = host_model_resolve(model=str(_host_model_path(host, echo)), by=researcher)
        activation_set = ActivationSet.objects.filter(corpus=corpus, hook_point__name=host.hook,
                                                      host_model=host_model).first()
        if activation_set is None:
            job = cache_activations_request(host_model=host_model, hook_name=host.hook, corpus=corpus, by=researcher,
                                            batch_size=host.capture_batch_size, max_length=host.max_length,
                                            enqueue=False)
            job = _run(job, via_worker=via_worker, progress=progress)
            activation_set = ActivationSet.objects.get(pk=job.result["activation_set_id"])
    sae_name = f"{corpus.name} topk-{config.width}" + ("" if host.name == "minilm" else f" {host.name}")
    with _timed(summary, "train SAE", echo):
        sae = SAE.objects.filter(name=sae_name).first()
        if sae is None:
            job = train_sae_request(activation_set=activation_set, arch="topk", width=config.width, k=config.k,
                                    steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=0,
                                    name=sae_name, checkpoint_every=max(config.steps // 5, 1), by=researcher,
                                    enqueue=False)
            job = _run(job, via_worker=via_worker, progress=progress)
            sae = SAE.objects.get(pk=job.result["sae_id"])
    with _timed(summary, "mine latents", echo):
        if not sae.latents.filter(examples__isnull=False).exists():
            _run(mine_latents_request(sae=sae, by=researcher, enqueue=False), via_worker=via_worker,
                 progress=progress)
            sae.refresh_from_db()
    summary.sae_metrics = sae.metrics
    with _timed(summary, "rubric and calibration round", echo):
        version = _rubric(by=coordinator)
        round_ = Round.objects.filter(sae=sae, kind=Round.Kind.CALIBRATION).first()
        if round_ is None:
            round_ = round_create(
                name="Calibration 1", kind=Round.Kind.CALIBRATION, sae=sae, rubric_version=version,
                institutions=list(people["institutions"].values()), overlap=config.overlap, repeat_fraction=0.1,
                blind=True, selection_rule="lowest_entropy", n_latents=config.n_round_latents, seed=0,
                by=coordinator,
            )
            round_ = round_open(round=round_, by=coordinator)
        summary.round_id = round_.pk
    return summary
