"""The embedded demo: institutions, people, the shipped corpus, MiniLM activations, a TopK SAE, mined
latents, a rubric, an open calibration round and a closed, revealed one labelled by simulated physicians
— built idempotently, one stage at a time."""

from __future__ import annotations

import json
import random
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
from annotation.models import RESERVED_CONCEPTS, Assignment, Round, RubricVersion
from annotation.services import (
    ConceptSpec,
    label_submit,
    round_close,
    round_create,
    round_open,
    round_reveal,
    round_statistics_run,
    rubric_create,
)
from annotation.stats.routing import RoutingConfig
from features.democorpus import corpus_path, sample_slice
from features.democorpus.concepts import (
    CONCEPTS,
    DESCRIPTIONS,
    GROUPS,
    PROTECTED_ATTRIBUTES,
    PROTECTED_GROUP,
)
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
INSTITUTIONS = (
    ("ALDER", "Alder General Hospital"),
    ("BIRCH", "Birch University Medical Center"),
    ("CEDAR", "Cedar Community Hospital"),
)
# (username, role, institution): 8 physicians, 2 of them senior, spread over the three sites.
PEOPLE = (
    ("coordinator", Role.COORDINATOR, "ALDER"),
    ("researcher", Role.RESEARCHER, "BIRCH"),
    ("dr_ash", Role.SENIOR, "ALDER"),
    ("dr_alba", Role.PHYSICIAN, "ALDER"),
    ("dr_aoki", Role.PHYSICIAN, "ALDER"),
    ("dr_bell", Role.SENIOR, "BIRCH"),
    ("dr_brook", Role.PHYSICIAN, "BIRCH"),
    ("dr_baker", Role.PHYSICIAN, "BIRCH"),
    ("dr_cole", Role.PHYSICIAN, "CEDAR"),
    ("dr_cruz", Role.PHYSICIAN, "CEDAR"),
    ("clinician", Role.CLINICIAN, "ALDER"),  # explains notes (issue 12); never a rater
)
HOOK = "blocks.3.hook_resid_post"  # MiniLM has 6 layers: a middle layer's residual stream
# Simulated physicians of the demo's closed round: (username, site, accuracy on clear latents, how they
# err). Mixed skill on purpose — two careful raters, three average ones, one who often retreats to the
# organ-system group — so that agreement, rater weights and soft labels have something to show.
SIMULATED_RATERS = (
    ("sim_dr_1", "ALDER", 0.92, "sibling"),
    ("sim_dr_2", "BIRCH", 0.88, "sibling"),
    ("sim_dr_3", "CEDAR", 0.78, "sibling"),
    ("sim_dr_4", "ALDER", 0.72, "random"),
    ("sim_dr_5", "BIRCH", 0.65, "group"),
    ("sim_dr_6", "CEDAR", 0.80, "sibling"),
)
SIMULATED_ROUND_NAME = "Calibration 0 — simulated physicians (demo)"
SPLIT_SHARE = 1 / 3  # latents on which even careful raters split between two readings


@dataclass(frozen=True)
class DemoHost:
    """The host model the demo studies: which one, where its residual stream is read, how it is captured,
    and the full demo's preset for it (None: DemoSettings's default)."""

    name: str
    hook: str
    max_length: int
    capture_batch_size: int
    snippets: int | None = None
    """Snippets of the shipped corpus the full demo captures (a fixed random slice); None: all 3,200."""
    width: int | None = None
    steps: int | None = None
    ce_texts: int | None = None
    """Snippets over which a causal host's CE-loss recovered is measured (None: the training job's 64)."""


# MiniLM (the default, `make run`): an encoder, so no next-token loss. Gemma 3 270M (`--host gemma`,
# needs `.[causal]`): causal, 18 layers, so layer 9 is the middle; its CE-loss recovered is reported.
# Gemma's preset keeps the full build within 10 minutes on 2 CPU cores. Measured on the whole corpus
# (122k tokens, width 2048, 800 steps, 64 CE texts): 1,078 CPU-s, of which capture ≈ 620 (3 CPU-s per
# 1,000 tokens through layers 0–9; the capture stops at the hooked layer), training ≈ 205, CE-loss
# ≈ 135 (three full passes with a 262k-word unembedding), mining ≈ 110; CE-loss recovered 1.00, FVE
# 0.95. A 1,200-snippet slice (≈ 46k tokens), 500 steps and 32 CE texts cut every phase; see
# README ("A causal host") for the preset's measured time and metrics.
HOSTS = {
    "minilm": DemoHost(name="minilm", hook=HOOK, max_length=96, capture_batch_size=64),
    "gemma": DemoHost(
        name="gemma",
        hook="blocks.9.hook_resid_post",
        max_length=96,
        capture_batch_size=16,
        snippets=1200,
        width=2048,
        steps=500,
        ce_texts=32,
    ),
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
    n_simulated_latents: int = 24
    """Latents of the closed round labelled by SIMULATED_RATERS (none of them in the open round)."""
    snippets: int | None = None
    """A fixed random slice of the shipped corpus (None: all of it; `quick` takes 300)."""
    ce_texts: int | None = None
    """Snippets for a causal host's CE-loss recovered (None: the training job's default, 64)."""

    def __post_init__(self) -> None:
        if self.host not in HOSTS:
            raise ValueError(f"unknown demo host {self.host!r}; choose one of {', '.join(HOSTS)}")

    @classmethod
    def for_host(cls, host: str = "minilm") -> DemoSettings:
        """The full demo on `host`, with that host's preset (HOSTS)."""
        if host not in HOSTS:
            raise ValueError(f"unknown demo host {host!r}; choose one of {', '.join(HOSTS)}")
        preset = HOSTS[host]
        overrides = {"width": preset.width, "steps": preset.steps, "snippets": preset.snippets}
        return cls(
            host=host, ce_texts=preset.ce_texts, **{key: value for key, value in overrides.items() if value is not None}
        )

    @classmethod
    def for_quick(cls, *, host: str = "minilm") -> DemoSettings:
        return cls(
            quick=True,
            width=512,
            k=16,
            steps=150,
            batch_size=1024,
            n_round_latents=12,
            host=host,
            n_simulated_latents=15,
            snippets=300,
            ce_texts=16,
        )

    @property
    def corpus_name(self) -> str:
        if self.quick:
            return "demo-clinical-quick"
        return "demo-clinical" if self.snippets is None else f"demo-clinical-{self.snippets}"

    @property
    def host_model(self) -> DemoHost:
        return HOSTS[self.host]


@dataclass
class DemoSummary:
    stage_seconds: dict[str, float] = field(default_factory=dict)
    new_passwords: dict[str, str] = field(default_factory=dict)
    sae_metrics: dict = field(default_factory=dict)
    round_id: int | None = None
    simulated_round_id: int | None = None


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
    institutions = {
        code: Institution.objects.get_or_create(code=code.lower(), defaults={"name": name})[0]
        for code, name in INSTITUTIONS
    }
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
        known = (
            dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line) if path.exists() else {}
        )
        known.update(summary.new_passwords)
        path.write_text("".join(f"{user} {password}\n" for user, password in sorted(known.items())))
        path.chmod(0o600)
    return {"institutions": institutions, "users": users}


def _corpus(config: DemoSettings, *, via_worker: bool, by) -> Corpus:
    existing = Corpus.objects.filter(name=config.corpus_name).first()
    if existing is not None:
        return existing
    source = corpus_path()
    if config.snippets is not None:
        source = Path(settings.ARTIFACT_ROOT) / "uploads" / f"{config.corpus_name}.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        rows = sample_slice(config.snippets, seed=0)
        source.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    from inference.services import job_create

    job = job_create(
        kind=Job.Kind.IMPORT_CORPUS,
        by=by,
        enqueue=False,
        parameters={
            "path": str(source),
            "name": config.corpus_name,
            "licence": "CC0-1.0 (synthetic, no real patients)",
            "description": "Concord's synthetic chart snippets over 17 concepts",
        },
    )
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

    job = job_create(
        kind=Job.Kind.IMPORT_CORPUS,
        by=by,
        enqueue=False,
        parameters={
            "path": str(ood_path()),
            "name": DISCHARGE_CORPUS,
            "licence": "CC0-1.0 (synthetic, no real patients)",
            "description": "Discharge-summary prose: a style shift from the chart snippets, for drift audits",
        },
    )
    _run(job, via_worker=via_worker)
    return Corpus.objects.get(name=DISCHARGE_CORPUS)


def _rubric(*, by) -> RubricVersion:
    version = RubricVersion.objects.filter(rubric__name="Demo clinical concepts").order_by("-version").first()
    if version is not None:
        return version
    specs = [
        ConceptSpec(code=group.code, name=group.name, description=DESCRIPTIONS.get(group.code, "")) for group in GROUPS
    ]
    specs += [
        ConceptSpec(
            code=concept.code,
            name=concept.name,
            parent_code=concept.parent,
            description=DESCRIPTIONS.get(concept.code, ""),
            synonyms=tuple(concept.synonyms),
        )
        for concept in CONCEPTS
    ]
    specs += [
        ConceptSpec(code=code, name=name, description=DESCRIPTIONS.get(code, ""))
        for code, name in RESERVED_CONCEPTS.items()
    ]
    specs += [
        ConceptSpec(
            code=PROTECTED_GROUP.code,
            name=PROTECTED_GROUP.name,
            protected=True,
            description=DESCRIPTIONS[PROTECTED_GROUP.code],
        )
    ]
    specs += [
        ConceptSpec(
            code=attribute.code,
            name=attribute.name,
            parent_code=PROTECTED_GROUP.code,
            protected=True,
            description=DESCRIPTIONS[attribute.code],
        )
        for attribute in PROTECTED_ATTRIBUTES
    ]
    return rubric_create(
        name="Demo clinical concepts",
        concepts=specs,
        by=by,
        description="Organ-system groups and 17 clinical concepts, plus the reserved codes.",
        guidelines=(
            "Pick the most specific concept that explains the top examples AND the quantile samples. "
            "Use a group code when the latent fires on several concepts of one organ system, "
            "POLYSEMANTIC when it fires on unrelated concepts, ARTIFACT for formatting, boilerplate or "
            "tokenisation, UNINTERPRETABLE when no pattern holds. Name the evidence in your rationale. "
            "Race/ethnicity, sex/gender, insurance and age band are protected attributes: label a latent "
            "that tracks one with that concept."
        ),
    )


def _host_model_path(host: DemoHost, echo: Echo) -> Path:
    from inference.engine.host_models import gemma_path, minilm_path

    if host.name == "gemma":  # converted from the packaged GGUF once, then cached as safetensors
        return gemma_path(Path(settings.ARTIFACT_ROOT) / "host_models", progress=lambda message: echo(f"  {message}"))
    return minilm_path()


def demo_seed(*, config: DemoSettings, via_worker: bool = False, echo: Echo = print, progress=None) -> DemoSummary:
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
        activation_set = ActivationSet.objects.filter(
            corpus=corpus, hook_point__name=host.hook, host_model=host_model
        ).first()
        if activation_set is None:
            job = cache_activations_request(
                host_model=host_model,
                hook_name=host.hook,
                corpus=corpus,
                by=researcher,
                batch_size=host.capture_batch_size,
                max_length=host.max_length,
                enqueue=False,
            )
            job = _run(job, via_worker=via_worker, progress=progress)
            activation_set = ActivationSet.objects.get(pk=job.result["activation_set_id"])
    sae_name = f"{corpus.name} topk-{config.width}" + ("" if host.name == "minilm" else f" {host.name}")
    with _timed(summary, "train SAE", echo):
        sae = SAE.objects.filter(name=sae_name).first()
        if sae is None:
            job = train_sae_request(
                activation_set=activation_set,
                arch="topk",
                width=config.width,
                k=config.k,
                steps=config.steps,
                batch_size=config.batch_size,
                lr=config.lr,
                seed=0,
                name=sae_name,
                checkpoint_every=max(config.steps // 5, 1),
                ce_texts=config.ce_texts,
                by=researcher,
                enqueue=False,
            )
            job = _run(job, via_worker=via_worker, progress=progress)
            sae = SAE.objects.get(pk=job.result["sae_id"])
    with _timed(summary, "mine latents", echo):
        if not sae.latents.filter(examples__isnull=False).exists():
            _run(mine_latents_request(sae=sae, by=researcher, enqueue=False), via_worker=via_worker, progress=progress)
            sae.refresh_from_db()
    summary.sae_metrics = sae.metrics
    with _timed(summary, "rubric and calibration round", echo):
        version = _rubric(by=coordinator)
        round_ = Round.objects.filter(sae=sae, kind=Round.Kind.CALIBRATION, simulated=False).first()
        if round_ is None:
            round_ = round_create(
                name="Calibration 1",
                kind=Round.Kind.CALIBRATION,
                sae=sae,
                rubric_version=version,
                institutions=list(people["institutions"].values()),
                overlap=config.overlap,
                repeat_fraction=0.1,
                blind=True,
                selection_rule="lowest_entropy",
                n_latents=config.n_round_latents,
                seed=0,
                by=coordinator,
            )
            round_ = round_open(round=round_, by=coordinator)
        summary.round_id = round_.pk
    with _timed(summary, "simulated calibration round", echo):
        summary.simulated_round_id = _simulated_round(
            sae=sae, version=version, real_round=round_, people=people, config=config
        ).pk
    return summary


def _simulated_raters(people: dict) -> list:
    """Accounts for the simulated physicians: no usable password, inactive once they have labelled (so
    no real round picks them by default), names that say what they are."""
    User = get_user_model()
    users = []
    for username, site, _accuracy, _error in SIMULATED_RATERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, first_name="Simulated", last_name="physician")
            user.set_unusable_password()
            user.save()
            Profile.objects.create(user=user, institution=people["institutions"][site], role=Role.PHYSICIAN)
        elif not user.is_active:  # left inactive by an earlier demo (another SAE or host): active while labelling
            user.is_active = True
            user.save(update_fields=["is_active"])
        users.append(user)
    return users


def _simulated_answer(
    *,
    rng: random.Random,
    truth: str,
    split_with: str | None,
    accuracy: float,
    error: str,
    siblings: dict[str, list[str]],
    parent: dict[str, str],
    leaves: list[str],
) -> str:
    if split_with is not None:  # a genuinely ambiguous latent: careful raters split too
        return rng.choices([truth, split_with, parent.get(truth) or truth], weights=[0.45, 0.4, 0.15])[0]
    if rng.random() < accuracy:
        return truth
    if error == "group" and parent.get(truth):
        return parent[truth]
    if error == "sibling" and siblings.get(truth) and rng.random() < 0.7:
        return rng.choice(siblings[truth])
    return rng.choice([*leaves, "UNINTERPRETABLE", "ARTIFACT"])


def _simulated_round(
    *, sae: SAE, version: RubricVersion, real_round: Round, people: dict, config: DemoSettings
) -> Round:
    """A calibration round on latents the open round does not hold, labelled by SIMULATED_RATERS, closed
    (statistics, consensus, routing) and revealed. Its routing needs R = 1 round: a newcomer sees split
    latents in the seniors' queue at once instead of after a second round (DESIGN's default is R = 2).
    Marked `simulated`, so exports leave it out unless asked for."""
    existing = Round.objects.filter(sae=sae, simulated=True, name=SIMULATED_ROUND_NAME).first()
    if existing is not None:
        return existing
    coordinator = people["users"]["coordinator"]
    concepts = list(version.concepts.all())
    codes = {c.code for c in concepts}
    parent = {c.code: c.parent_code for c in concepts if c.parent_code in codes}
    leaves = sorted(parent)
    siblings = {code: [other for other in leaves if other != code and parent[other] == parent[code]] for code in leaves}
    taken = set(real_round.latents.values_list("pk", flat=True))
    candidates = list(
        sae.latents.filter(examples__isnull=False)
        .exclude(pk__in=taken)
        .distinct()
        .order_by("-best_tag_r", "index")[: config.n_simulated_latents]
    )
    if not candidates:
        raise RuntimeError("no mined latent is left for the simulated round")
    rng = random.Random(0)
    truth, split_with = {}, {}
    for latent in candidates:
        truth[latent.pk] = latent.best_tag if latent.best_tag in parent else rng.choice(leaves)
        if rng.random() < SPLIT_SHARE:
            split_with[latent.pk] = rng.choice(
                siblings[truth[latent.pk]] or [c for c in leaves if c != truth[latent.pk]]
            )
    raters = _simulated_raters(people)
    skill = {
        user.pk: (accuracy, error)
        for user, (_name, _site, accuracy, error) in zip(raters, SIMULATED_RATERS, strict=False)
    }
    names = {c.code: c.name for c in concepts}
    with transaction.atomic():
        round_ = round_create(
            name=SIMULATED_ROUND_NAME,
            kind=Round.Kind.CALIBRATION,
            sae=sae,
            rubric_version=version,
            institutions=list(people["institutions"].values()),
            overlap=config.overlap,
            repeat_fraction=0.1,
            min_repeats=3,
            blind=True,
            selection_rule="hand",
            latent_indices=[latent.index for latent in candidates],
            raters=raters,
            seed=0,
            routing=RoutingConfig(min_rounds=1),
            simulated=True,
            by=coordinator,
        )
        round_open(round=round_, by=coordinator)
        given: dict[tuple[int, int], str] = {}
        for assignment in (
            Assignment.objects.filter(round=round_)
            .select_related("round", "rater")
            .order_by("is_repeat", "rater_id", "position")
        ):
            accuracy, error = skill[assignment.rater_id]
            key = (assignment.latent_id, assignment.rater_id)
            if assignment.is_repeat and rng.random() < 0.75:
                code = given[key]  # most repeats get the same answer again; the rest are judged afresh
            else:
                code = _simulated_answer(
                    rng=rng,
                    truth=truth[assignment.latent_id],
                    split_with=split_with.get(assignment.latent_id),
                    accuracy=accuracy,
                    error=error,
                    siblings=siblings,
                    parent=parent,
                    leaves=leaves,
                )
            given.setdefault(key, code)
            label_submit(
                assignment=assignment,
                concept_code=code,
                confidence=2 if assignment.latent_id in split_with else rng.choice([3, 4, 5]),
                rationale=f"[simulated] The peak tokens of the top and quantile examples read as "
                f"{names.get(code, code).lower()}.",
                by=assignment.rater,
            )
    round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    # The demo computes the statistics here, in the seeding process, instead of waiting for a worker.
    round_statistics_run(round_id=round_.pk, token=round_.statistics_token)
    round_.refresh_from_db()
    round_reveal(round=round_, by=coordinator)
    type(raters[0]).objects.filter(pk__in=[user.pk for user in raters]).update(is_active=False)
    return round_
