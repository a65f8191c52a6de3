"""The world the access matrices probe: institution `own` holds private data marked PRIVATEA everywhere it can
carry text; `other` holds people of every role and nothing else; a shared SAE belongs to no one.

Markers make a leak visible whatever the endpoint: every text of own's private data (corpus name, snippet
text, SAE and round names, job parameters, comments, adjudication rationale) contains PRIVATE, and every
label's rationale and free text name its rater (SECRET-<username>-, FREE-<username>), so that a response
can be searched for someone else's judgment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import Model
from rest_framework.test import APIClient

from accounts.models import Institution, Role
from accounts.permissions import role_of
from annotation import services
from annotation.models import Assignment, Comment, Label, Round
from features.models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent
from inference.models import Job
from tests import factories
from tests.annotation import worlds
from tests.conftest import ROOT

PRIVATE = "PRIVATEA"
ABSENT_ID = 987654321
ABSENT_CODE = "no-such-institution"
ABSENT_PSEUDONYM = "R-0000000000"
ROLES = [Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR, Role.RESEARCHER, Role.ADMIN, Role.CLINICIAN]
WHERE = ["own", "other"]


# SECRET-<rater>-r<round>-l<latent> in a rationale, FREE-<rater>-r<round>-l<latent> as the free-text name.
LABEL_MARK = re.compile(r"(?:SECRET|FREE)-(\w+)-r(\d+)-l(\d+)")


def _mark(kind: str, assignment: Assignment) -> str:
    return f"{kind}-{assignment.rater.username}-r{assignment.round_id}-l{assignment.latent_id}"


def rationale_for(assignment: Assignment) -> str:
    return f"{PRIVATE} {_mark('SECRET', assignment)} the peak token names this finding"


def free_text_for(assignment: Assignment) -> str:
    return _mark("FREE", assignment)


def label_marks(text: str) -> set[tuple[str, int, int]]:
    """(rater username, round id, latent id) of every label whose rationale or free text the text shows."""
    return {(user, int(round_id), int(latent_id)) for user, round_id, latent_id in LABEL_MARK.findall(text)}


def label_visible_by_spec(viewer, mark: tuple[str, int, int]) -> bool:
    """The blind rule, written out independently of annotation.access (docs/access.md): may `viewer` see
    this label? One's own always; a round's watchers once it is closed; its raters once it is revealed; a
    senior the closed rounds' labels of a latent in their adjudication queue. Never before close."""
    username, round_id, latent_id = mark
    if username == viewer.username:
        return True
    round_ = Round.objects.select_related("coordinator__profile", "sae__activation_set__corpus").get(pk=round_id)
    role = role_of(viewer)
    frozen = round_.status in (Round.Status.CLOSED, Round.Status.REVEALED)
    owner = round_.sae.activation_set.corpus.institution_id if round_.sae.activation_set_id else None
    sees_sae = role == Role.ADMIN or owner is None or owner == viewer.profile.institution_id
    if role == Role.ADMIN:
        return frozen
    if role == Role.RESEARCHER:
        return frozen and sees_sae
    if role == Role.COORDINATOR:
        institution = viewer.profile.institution_id
        takes_part = (
            round_.coordinator.profile.institution_id == institution
            or round_.institutions.filter(pk=institution).exists()
        )
        return frozen and sees_sae and takes_part
    rated = round_.assignments.filter(rater=viewer).exists()
    if round_.status == Round.Status.REVEALED and rated and sees_sae:
        return True
    if role == Role.SENIOR and frozen and sees_sae:
        latent = Latent.objects.get(pk=latent_id)
        still_labelling = Assignment.objects.filter(
            latent=latent, rater=viewer, round__status__in=[Round.Status.DRAFT, Round.Status.OPEN]
        )
        return latent.status == Latent.Status.AMBIGUOUS and not still_labelling.exists()
    return False


def label_leaks(viewer, text: str, cache: dict | None = None) -> list[tuple[str, int, int]]:
    """The label marks in `text` that `viewer` may not see. `cache` memoises the rule while the data stand still."""
    cache = {} if cache is None else cache
    leaks = []
    for mark in label_marks(text):
        key = (viewer.pk, mark)
        if key not in cache:
            cache[key] = label_visible_by_spec(viewer, mark)
        if not cache[key]:
            leaks.append(mark)
    return sorted(leaks)


def send(client, case, values):
    """One request of a matrix case with its placeholders filled."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .matrix_cases import fill

    path = fill(case.template, values)
    if case.method == "get":
        return client.get(path)
    data = fill(case.data or {}, values)
    if case.extra.get("upload"):
        data["file"] = SimpleUploadedFile("probe.jsonl", b'{"external_id": "a", "text": "probe"}\n')
    if case.format == "json":
        return client.post(path, data, format="json")
    return client.post(path, data, format="multipart")


def same_answer(foreign, absent, foreign_value, absent_value) -> bool:
    """A foreign id answers exactly as an absent one: same status and, for JSON, the same body once the
    two ids are written alike."""
    if foreign.status_code != absent.status_code:
        return False
    if not (is_json(foreign) and is_json(absent)):
        return True

    def normal(response, value):
        return re.sub(rf"\b{re.escape(str(value))}\b", "<ID>", body_text(response))

    return normal(foreign, foreign_value) == normal(absent, absent_value)


@dataclass
class World:
    own: Institution
    other: Institution
    corpus: Corpus
    sae: SAE
    shared_sae: SAE
    activation_set: ActivationSet
    hook: HookPoint
    coordinator: object
    raters: list  # physicians p1, p2 and senior s1 of own: every rater of `revealed`
    revealed: Round
    open: Round
    draft: Round
    latent: Latent  # labelled in `revealed`
    ambiguous: Latent  # in the adjudication queue
    job: Job
    comment: Comment
    token: object  # own researcher's API token
    sweep: object  # a sweep of own's researcher, holding `job`
    causal_sae: SAE  # on a causal host, trained on own's private corpus: steerable by own's steerers
    steer_job: Job  # own researcher's finished steering run with `causal_sae`
    users: dict = field(default_factory=dict)

    @property
    def rater(self):
        return self.raters[0]

    def own_assignment(self, round_key: str = "open") -> Assignment:
        return (
            Assignment.objects.filter(round=getattr(self, round_key), rater=self.rater, is_repeat=False)
            .order_by("position")
            .first()
        )

    def actor(self, role: str, where: str):
        """One user per role and institution, made once. Own's physician is a rater of every round; own's
        coordinator and researcher are colleagues of the round's coordinator and of the job's author; own's
        senior labels nothing."""
        key = (role, where)
        if key not in self.users:
            if key == (Role.PHYSICIAN, "own"):
                self.users[key] = self.rater
            else:
                institution = self.own if where == "own" else self.other
                self.users[key] = factories.user(
                    role=role, institution_obj=institution, username=f"{where}_{role}_actor"
                )
        return self.users[key]


def build_world() -> World:
    own, other = factories.institution("own"), factories.institution("other")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="own_coordinator")
    raters = [
        factories.user(role=Role.PHYSICIAN, institution_obj=own, username="own_p1"),
        factories.user(role=Role.PHYSICIAN, institution_obj=own, username="own_p2"),
        factories.user(role=Role.SENIOR, institution_obj=own, username="own_s1"),
    ]
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=own, username="own_researcher")
    sae = worlds.sae_with_examples(
        n_latents=4, institution=own, snippet_text=lambda i: f"{PRIVATE} patient {i} denies chest pain heart failure"
    )
    SAE.objects.filter(pk=sae.pk).update(name=f"{PRIVATE}-sae")
    Corpus.objects.filter(pk=sae.activation_set.corpus_id).update(name=f"{PRIVATE}-corpus")
    Latent.objects.filter(sae=sae).update(histogram={"counts": [1], "edges": [0.0, 1.0], "note": PRIVATE})
    sae.refresh_from_db()
    shared_sae = worlds.sae_with_examples(n_latents=2)
    version = worlds.rubric(by=coordinator)

    def labelled_round(kind: str) -> Round:
        round_ = worlds.make_round(
            by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=3, kind=kind
        )
        Round.objects.filter(pk=round_.pk).update(name=f"{PRIVATE}-{kind}-{round_.pk}")
        for assignment in Assignment.objects.filter(round=round_).select_related("round__rubric_version", "rater"):
            services.label_submit(
                assignment=assignment,
                concept_code="HF" if assignment.latent.index % 2 else "AKI",
                confidence=4,
                rationale=rationale_for(assignment),
                free_text=free_text_for(assignment),
                by=assignment.rater,
            )
        round_.refresh_from_db()
        return round_

    revealed = labelled_round("calibration")
    worlds.close_round(round=revealed, by=coordinator)
    services.round_reveal(round=revealed, by=coordinator)
    latent = sae.latents.get(index=1)
    comment = services.comment_create(
        round=revealed, latent=latent, text=f"{PRIVATE} comment by the rater", by=raters[0]
    )
    open_round = labelled_round("production")
    draft = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=1, open_it=False
    )
    Round.objects.filter(pk=draft.pk).update(name=f"{PRIVATE}-draft-{draft.pk}")
    decided = sae.latents.get(index=2)
    Latent.objects.filter(pk=decided.pk).update(status=Latent.Status.AMBIGUOUS)
    concept = version.concepts.get(code="AKI")
    services.adjudication_record(
        latent=decided, concept=concept, by=raters[2], rationale=f"{PRIVATE} decided on the renal reading after review"
    )
    ambiguous = sae.latents.get(index=3)
    Latent.objects.filter(pk=ambiguous.pk).update(status=Latent.Status.AMBIGUOUS)
    from accounts.tokens import api_token_create

    token, _secret = api_token_create(user=researcher, name=f"{PRIVATE} script")
    job = Job.objects.create(
        kind=Job.Kind.TRAIN_SAE,
        created_by=researcher,
        queue="gpu",
        parameters={"name": f"{PRIVATE}-job", "activation_set": sae.activation_set_id},
    )
    from inference.models import Sweep

    sweep = Sweep.objects.create(name=f"{PRIVATE}-sweep", activation_set=sae.activation_set, created_by=researcher)
    Job.objects.filter(pk=job.pk).update(sweep=sweep)
    causal_sae, steer_job = _steering(sae=sae, researcher=researcher)
    return World(
        own=own,
        other=other,
        corpus=sae.activation_set.corpus,
        sae=sae,
        shared_sae=shared_sae,
        activation_set=sae.activation_set,
        hook=sae.hook_point,
        coordinator=coordinator,
        raters=raters,
        revealed=revealed,
        open=open_round,
        draft=draft,
        latent=latent,
        ambiguous=ambiguous,
        job=job,
        comment=comment,
        token=token,
        sweep=sweep,
        causal_sae=causal_sae,
        steer_job=steer_job,
    )


def _steering(*, sae: SAE, researcher) -> tuple[SAE, Job]:
    """An SAE on a causal host trained on own's private corpus, and a finished steering run with it whose
    prompt and continuations are private."""
    host = HostModel.objects.create(name="tiny-causal", source="/nonexistent", kind="causal", d_model=8, n_layers=2)
    hook = HookPoint.objects.create(host_model=host, name="blocks.0.hook_resid_post", layer=0, site="resid_post")
    causal_sae = factories.sae(hook=hook, n_latents=2)
    activation_set = ActivationSet.objects.create(
        host_model=host, hook_point=hook, corpus=sae.activation_set.corpus, artifact_uri="/x"
    )
    SAE.objects.filter(pk=causal_sae.pk).update(name=f"{PRIVATE}-causal-sae", activation_set=activation_set)
    causal_sae.refresh_from_db()
    latents = [{"index": 0, "weight": 1.0}]
    prompt = f"{PRIVATE} patient reports"
    steer_job = Job.objects.create(
        kind=Job.Kind.STEER,
        created_by=researcher,
        queue="gpu",
        status=Job.Status.SUCCEEDED,
        progress=1.0,
        parameters={
            "sae_id": causal_sae.pk,
            "latents": latents,
            "concept": None,
            "clamp": 4.0,
            "scale": None,
            "prompt": prompt,
            "max_new_tokens": 2,
            "seed": None,
        },
        result={
            "notice": "Research tool, not for patient care.",
            "sae": causal_sae.pk,
            "hook_name": hook.name,
            "host_model": host.name,
            "latents": latents,
            "concept": None,
            "clamp": 4.0,
            "scale": None,
            "seed": None,
            "decoding": "greedy",
            "prompt": prompt,
            "prompt_tokens": [PRIVATE],
            "baseline": {"token_ids": [1, 2], "tokens": [" chest", " pain"], "text": f" {PRIVATE} chest pain"},
            "steered": {"token_ids": [3, 4], "tokens": [" renal", " failure"], "text": f" {PRIVATE} renal failure"},
            "kl": [0.5, 0.25],
            "kl_tokens": [" chest", " pain"],
            "edited_positions": 2,
            "notes": [],
            "seconds": 0.1,
            "device": "cpu",
        },
    )
    return causal_sae, steer_job


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)  # a session, as the UI has; pages and the API both answer it
    return client


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def row_counts(models: list[type[Model]]) -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in models}


def label_snapshot() -> list[tuple]:
    return sorted(Label.objects.values_list("pk", "concept_id", "rationale", "free_text", "confidence"))


def record(name: str, figures: dict) -> None:
    """Print the matrix's figures and keep them under test-artifacts/ for the closing note."""
    print(f"\n[access matrix] {name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    Path(folder / f"access-matrix-{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True))
