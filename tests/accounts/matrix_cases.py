"""Every URL of the site, as a case of the access matrices: how to reach it with own's private ids, and which of
those ids must be indistinguishable, for anyone else, from an id that was never created.

A URL name found in the URL conf and missing here fails tests/accounts/test_permission_matrix.py: a new
endpoint joins the matrices before it ships. Templates name ids in braces ({sae}, {open}, …); `private`
lists the placeholders that hold own's private rows (each one is swapped alone for an absent id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

from .access_world import ABSENT_CODE, ABSENT_ID, ABSENT_PSEUDONYM, World

# Names the matrices do not request, each with its reason.
EXEMPT = {
    "login": "the login form: no data behind it",
    "logout": "POST only, ends one's own session",
    "schema": "the API's description: no rows",
    "api-docs": "the API's documentation page: no rows",
    "api-token-revoke": "POST on one's own token only: anyone else's answers 404 (tests/accounts/test_api_tokens.py)",
}


@dataclass(frozen=True)
class Case:
    name: str
    template: str
    private: tuple[str, ...] = ()
    method: str = "get"
    data: dict | None = None  # values may hold placeholders too
    format: str = "json"  # json | multipart (forms and uploads)
    label_bearing: bool = False
    extra: dict = field(default_factory=dict)


def ids(world: World, actor) -> dict[str, object]:
    """Placeholder values: own's private rows, public rows, and the actor's own institution."""
    assignment = world.own_assignment()
    from annotation.models import RubricVersion

    version = RubricVersion.objects.order_by("pk").first()
    return {
        "corpus": world.corpus.pk,
        "sae": world.sae.pk,
        "activation_set": world.activation_set.pk,
        "latent": world.latent.pk,
        "ambiguous": world.ambiguous.pk,
        "revealed": world.revealed.pk,
        "open": world.open.pk,
        "draft": world.draft.pk,
        "assignment": assignment.pk,
        "position": assignment.position,
        "job": world.job.pk,
        "rubric": version.pk,
        "rubric_id": version.rubric_id,
        "concept": version.concepts.get(code="AKI").pk,
        "code": world.own.code,
        "own_pk": world.own.pk,
        "pseudonym": world.raters[1].profile.pseudonym,
        "host_model": world.hook.host_model_id,
        "shared_sae": world.shared_sae.pk,
        "shared_corpus": world.shared_sae.activation_set.corpus_id,
        "my_code": actor.profile.institution.code,
        "my_pk": actor.profile.institution_id,
        "token": world.token.pk,
        "sweep": world.sweep.pk,
        "causal_sae": world.causal_sae.pk,
        "steer_job": world.steer_job.pk,
    }


ABSENT = {"code": ABSENT_CODE, "pseudonym": ABSENT_PSEUDONYM}


def personal_stranger(world: World, case: Case, actor) -> bool:
    """Items and tokens belong to one person: to everyone else, admins and colleagues included, they are
    as foreign as another institution's rows."""
    owners = {"assignment": world.rater.pk, "token": world.token.user_id}
    return any(name in owners and owners[name] != actor.pk for name in case.private)


def fill(value, values: dict):
    """Placeholders filled recursively; a whole-string placeholder keeps the value's type (ids stay ints)."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
            return values[value[1:-1]]
        return value.format(**values) if "{" in value else value
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


def variants(case: Case, values: dict) -> list[tuple[str, dict]]:
    """("foreign", values) first, then ("absent:<placeholder>", values with that id replaced) per private id."""
    out = [("foreign", values)]
    for name in case.private:
        out.append((f"absent:{name}", {**values, name: ABSENT.get(name, ABSENT_ID)}))
    return out


RATIONALE = "A rationale long enough for the form to accept it."

READ_CASES = [
    Case("api-tokens", "/account/tokens/"),
    Case("institution-list", "/api/v1/institutions/"),
    Case("me", "/api/v1/me/"),
    Case("corpus-list", "/api/v1/corpora/"),
    Case("corpus-detail", "/api/v1/corpora/{corpus}/", ("corpus",)),
    Case("snippet-list", "/api/v1/snippets/"),
    Case("snippet-list", "/api/v1/snippets/?corpus={corpus}", ("corpus",)),
    Case("hostmodel-list", "/api/v1/host-models/"),
    Case("hookpoint-list", "/api/v1/hook-points/"),
    Case("activationset-list", "/api/v1/activation-sets/"),
    Case("sae-list", "/api/v1/saes/"),
    Case("sae-detail", "/api/v1/saes/{sae}/", ("sae",)),
    Case("latent-list", "/api/v1/latents/"),
    Case("latent-list", "/api/v1/latents/?sae={sae}", ("sae",)),
    Case("latent-detail", "/api/v1/latents/{latent}/", ("latent",)),
    Case("round-list", "/api/v1/rounds/"),
    Case("round-detail", "/api/v1/rounds/{revealed}/", ("revealed",)),
    Case("round-detail", "/api/v1/rounds/{open}/", ("open",)),
    Case("round-detail", "/api/v1/rounds/{draft}/", ("draft",)),
    Case("round-progress", "/api/v1/rounds/{open}/progress/", ("open",)),
    Case("round-agreement", "/api/v1/rounds/{revealed}/agreement/", ("revealed",), label_bearing=True),
    Case("round-agreement", "/api/v1/rounds/{open}/agreement/", ("open",), label_bearing=True),
    Case("round-consensus", "/api/v1/rounds/{revealed}/consensus/", ("revealed",), label_bearing=True),
    Case("round-reliability", "/api/v1/rounds/{revealed}/reliability/", ("revealed",), label_bearing=True),
    Case("round-alpha-trend", "/api/v1/rounds/{revealed}/alpha-trend/", ("revealed",), label_bearing=True),
    Case("round-distribution", "/api/v1/rounds/{revealed}/distribution/", ("revealed",), label_bearing=True),
    Case("round-distribution", "/api/v1/rounds/{open}/distribution/", ("open",), label_bearing=True),
    Case("round-comments", "/api/v1/rounds/{revealed}/comments/", ("revealed",), label_bearing=True),
    Case("round-comments", "/api/v1/rounds/{revealed}/comments/?latent={latent}", ("revealed",), label_bearing=True),
    Case("rubric-version-list", "/api/v1/rubric-versions/"),
    Case("rubric-version-detail", "/api/v1/rubric-versions/{rubric}/"),
    Case("assignment-list", "/api/v1/assignments/"),
    Case("assignment-list", "/api/v1/assignments/?round={open}"),
    Case("assignment-detail", "/api/v1/assignments/{assignment}/", ("assignment",), label_bearing=True),
    Case("detection-items", "/api/v1/assignments/{assignment}/detection-items/", ("assignment",)),
    Case("label-list", "/api/v1/labels/", label_bearing=True),
    Case("label-list", "/api/v1/labels/?round={revealed}", ("revealed",), label_bearing=True),
    Case("label-list", "/api/v1/labels/?round={open}", ("open",), label_bearing=True),
    Case("adjudication-queue-api", "/api/v1/adjudication-queue/", label_bearing=True),
    Case("adjudication-list", "/api/v1/adjudications/", label_bearing=True),
    Case("labelled-latent-list", "/api/v1/labelled-latents/", label_bearing=True),
    Case("labelled-latent-list", "/api/v1/labelled-latents/?sae={sae}", ("sae",), label_bearing=True),
    Case("labelled-latent-list", "/api/v1/labelled-latents/?q=FREE", label_bearing=True),
    Case("labelled-latent-detail", "/api/v1/labelled-latents/{latent}/", ("latent",), label_bearing=True),
    Case("export-labels", "/api/v1/exports/labels/?round={revealed}&format=csv", ("revealed",), label_bearing=True),
    Case("export-labels", "/api/v1/exports/labels/?sae={sae}&format=jsonl", ("sae",), label_bearing=True),
    Case("export-labels", "/api/v1/exports/labels/?institution={code}&format=csv", label_bearing=True),
    Case("export-latents", "/api/v1/exports/latents/?round={revealed}&format=csv", ("revealed",), label_bearing=True),
    Case("job-list", "/api/v1/jobs/"),
    Case("job-detail", "/api/v1/jobs/{job}/", ("job",)),
    # pages
    Case("home", "/", label_bearing=True),
    Case("queue", "/queue/"),
    Case("round-queue", "/rounds/{open}/queue/", ("open",)),
    Case("round-queue", "/rounds/{revealed}/queue/", ("revealed",)),
    Case("item", "/rounds/{open}/items/{position}/", ("open",), label_bearing=True),
    Case("round-list-page", "/rounds/"),
    Case("round-create", "/rounds/new/"),
    Case("round-dashboard", "/rounds/{revealed}/", ("revealed",), label_bearing=True),
    Case("round-dashboard", "/rounds/{open}/", ("open",), label_bearing=True),
    Case("round-statistics-status", "/rounds/{revealed}/statistics-status/", ("revealed",)),
    Case("round-statistics-status", "/rounds/{open}/statistics-status/", ("open",)),
    Case("round-follow-up", "/rounds/{revealed}/follow-up/new/", ("revealed",)),
    Case("round-discussion", "/rounds/{revealed}/discussion/", ("revealed",), label_bearing=True),
    Case("round-discussion", "/rounds/{open}/discussion/", ("open",), label_bearing=True),
    Case("rubric-create", "/rubrics/new/"),
    Case("rubric-list", "/rubrics/"),
    Case("rubric-edit", "/rubrics/{rubric_id}/"),
    Case("adjudication-queue", "/adjudication/", label_bearing=True),
    Case("adjudication-decide", "/adjudication/{ambiguous}/", ("ambiguous",), label_bearing=True),
    Case("latent-browser", "/labelled-latents/", label_bearing=True),
    Case("latent-browser", "/labelled-latents/?q=FREE", label_bearing=True),
    Case("latent-browser", "/labelled-latents/?sae={sae}", ("sae",), label_bearing=True),
    Case("latent-page", "/labelled-latents/{latent}/", ("latent",), label_bearing=True),
    Case("export", "/export/"),
    Case("export", "/export/?round={revealed}&kind=labels&format=csv", ("revealed",), label_bearing=True),
    Case("export", "/export/?sae={sae}&kind=latents&format=jsonl", ("sae",), label_bearing=True),
    Case("api-tokens", "/account/tokens/"),
    Case("steering", "/steering/"),
    Case("jobs-page", "/jobs/"),
    Case("jobs-progress", "/jobs/progress.json?ids={job}", ("job",)),
    Case("jobs-export", "/jobs/export.csv"),
    Case("jobs-export", "/jobs/export.csv?by=sae"),
    Case("jobs-export", "/jobs/export.csv?by=sweep"),
    Case("sweep-detail", "/api/v1/sweeps/{sweep}/", ("sweep",)),
    Case("sae-compute", "/api/v1/saes/{sae}/compute/", ("sae",)),
    Case("job-page", "/jobs/{job}/", ("job",)),
    Case("steering", "/steering/"),
    Case("steering", "/steering/?sae={causal_sae}&latent=0"),
    Case("steering-job", "/steering/{steer_job}/", ("steer_job",)),
    Case("steering-job-api", "/api/v1/steering/{steer_job}/", ("steer_job",)),
    Case("sae-compute-page", "/jobs/saes/{sae}/", ("sae",)),
    Case("sweep-page", "/jobs/sweeps/{sweep}/", ("sweep",)),
    # issue 12 (clinical)
    Case("explain", "/explain/"),
    Case("drift-list", "/drift/"),
    Case("drift-detail", "/drift/{job}/", ("job",)),
    Case("protected-index", "/protected/"),
    Case("protected-report", "/protected/{sae}/", ("sae",), label_bearing=True),
    Case("api-drift-detail", "/api/v1/drift-audits/{job}/", ("job",)),
    Case("explain-saved", "/explain/saved/"),  # one's own kept notes only (tests/clinical/test_explain.py)
    Case("api-explain-saved", "/api/v1/explain/saved/"),
    Case("api-sae-protected", "/api/v1/saes/{sae}/protected/", ("sae",), label_bearing=True),
]

ROUND_CREATE = {
    "name": "probe",
    "kind": "calibration",
    "rubric_version": "{rubric}",
    "selection_rule": "hand",
    "latent_indices": [0, 1],
    "overlap": 1,
}
WRITE_CASES = [
    Case(
        "round-create-api",
        "/api/v1/rounds/create/",
        ("sae",),
        "post",
        {**ROUND_CREATE, "sae": "{sae}", "institutions": ["{code}"]},
    ),
    # Raters are named by pseudonym: another institution's rater is as unknown as a made-up pseudonym.
    Case(
        "round-create-api",
        "/api/v1/rounds/create/",
        ("pseudonym",),
        "post",
        {**ROUND_CREATE, "sae": "{shared_sae}", "institutions": ["{my_code}"], "raters": ["{pseudonym}"]},
    ),
    Case("round-open", "/api/v1/rounds/{draft}/open/", ("draft",), "post"),
    Case("round-close", "/api/v1/rounds/{open}/close/", ("open",), "post"),
    Case("round-reveal", "/api/v1/rounds/{revealed}/reveal/", ("revealed",), "post"),
    Case("round-follow-up-api", "/api/v1/rounds/{revealed}/follow-up/", ("revealed",), "post", {"guidelines": "g"}),
    Case("round-statistics", "/api/v1/rounds/{revealed}/statistics/", ("revealed",), "post"),
    Case(
        "round-comment-create",
        "/api/v1/rounds/{revealed}/comments/create/",
        ("revealed", "latent"),
        "post",
        {"latent": "{latent}", "text": "a probe comment"},
    ),
    Case("rubric-version-create", "/api/v1/rubric-versions/{rubric}/derive/", (), "post", {"guidelines": "g"}),
    Case(
        "rubric-create-api",
        "/api/v1/rubrics/create/",
        (),
        "post",
        {"name": "probe-rubric", "concepts": [{"code": "PX", "name": "Probe"}]},
    ),
    Case(
        "label-submit",
        "/api/v1/assignments/{assignment}/label/",
        ("assignment",),
        "post",
        {"concept_code": "HF", "confidence": 3, "rationale": RATIONALE},
    ),
    Case(
        "detection-answers",
        "/api/v1/assignments/{assignment}/detection-answers/",
        ("assignment",),
        "post",
        {"answers": []},
    ),
    Case(
        "adjudication-create",
        "/api/v1/adjudications/create/",
        ("ambiguous",),
        "post",
        {"latent": "{ambiguous}", "concept_code": "AKI", "rationale": RATIONALE},
    ),
    Case("job-cancel", "/api/v1/jobs/{job}/cancel/", ("job",), "post"),
    Case(
        "job-import-corpus",
        "/api/v1/jobs/import-corpus/",
        ("code",),
        "post",
        {"name": "probe-corpus", "institution": "{code}"},
        format="multipart",
        extra={"upload": True},
    ),
    Case(
        "job-cache-activations",
        "/api/v1/jobs/cache-activations/",
        ("corpus",),
        "post",
        {"host_model": "{host_model}", "hook_name": "blocks.0.hook_resid_post", "corpus": "{corpus}"},
    ),
    Case(
        "job-train-sae",
        "/api/v1/jobs/train-sae/",
        ("activation_set",),
        "post",
        {"activation_set": "{activation_set}", "arch": "topk", "width": 16, "k": 2, "steps": 10},
    ),
    Case("job-mine-latents", "/api/v1/jobs/mine-latents/", ("sae",), "post", {"sae": "{sae}"}),
    # issue 12 (clinical)
    Case("api-explain", "/api/v1/explain/", ("sae",), "post", {"sae": "{sae}", "text": "chest pain"}),
    Case("api-drift-create", "/api/v1/drift-audits/", ("sae",), "post", {"sae": "{sae}", "corpus": "{corpus}"}),
    Case("api-sae-protected-scan", "/api/v1/saes/{sae}/protected/scan/", ("sae",), "post", {}),
    # The corpus and the reference are ids too: on the shared SAE, own's private corpus in either field.
    Case(
        "api-drift-create",
        "/api/v1/drift-audits/",
        ("corpus",),
        "post",
        {"sae": "{shared_sae}", "corpus": "{corpus}"},
    ),
    Case(
        "api-drift-create",
        "/api/v1/drift-audits/",
        ("corpus",),
        "post",
        {"sae": "{shared_sae}", "corpus": "{shared_corpus}", "reference": "{corpus}"},
    ),
    # HTML forms
    Case("explain", "/explain/", ("sae",), "post", {"sae": "{sae}", "text": "chest pain"}, format="multipart"),
    # deleting a kept note: its owner only, anyone else's is 404 like an absent one (tests/clinical/test_explain.py)
    Case("explain-saved", "/explain/saved/", (), "post", {"delete": "0"}, format="multipart"),
    Case("drift-list", "/drift/", ("sae",), "post", {"sae": "{sae}", "corpus": "{corpus}"}, format="multipart"),
    Case(
        "drift-list",
        "/drift/",
        ("corpus",),
        "post",
        {"sae": "{shared_sae}", "corpus": "{shared_corpus}", "reference": "{corpus}"},
        format="multipart",
    ),
    Case("protected-report", "/protected/{sae}/", ("sae",), "post", {}, format="multipart"),
    Case(
        "round-create",
        "/rounds/new/",
        ("sae",),
        "post",
        {
            "name": "probe",
            "kind": "calibration",
            "sae": "{sae}",
            "rubric_version": "{rubric}",
            "institutions": ["{own_pk}"],
            "selection_rule": "hand",
            "latent_indices": "0,1",
            "overlap": "1",
            "repeat_fraction": "0",
        },
        format="multipart",
    ),
    Case("round-action", "/rounds/{draft}/open/", ("draft",), "post", {}, format="multipart"),
    Case("round-action", "/rounds/{open}/close/", ("open",), "post", {}, format="multipart"),
    Case("round-action", "/rounds/{revealed}/statistics/", ("revealed",), "post", {}, format="multipart"),
    Case(
        "round-follow-up",
        "/rounds/{revealed}/follow-up/new/",
        ("revealed",),
        "post",
        {"guidelines": "g", "concepts": "HF | Heart failure"},
        format="multipart",
    ),
    Case(
        "round-discussion",
        "/rounds/{revealed}/discussion/",
        ("revealed", "latent"),
        "post",
        {"latent": "{latent}", "text": "a probe comment"},
        format="multipart",
    ),
    Case(
        "rubric-create",
        "/rubrics/new/",
        (),
        "post",
        {"name": "probe-form-rubric", "concepts": "PY | Probe"},
        format="multipart",
    ),
    Case(
        "rubric-edit", "/rubrics/{rubric_id}/", (), "post", {"guidelines": "g", "action": "preview"}, format="multipart"
    ),
    Case(
        "adjudication-decide",
        "/adjudication/{ambiguous}/",
        ("ambiguous",),
        "post",
        {"concept": "{concept}", "rationale": RATIONALE},
        format="multipart",
    ),
    Case(
        "item",
        "/rounds/{open}/items/{position}/",
        ("open",),
        "post",
        {"concept_code": "HF", "confidence": "3", "rationale": RATIONALE},
        format="multipart",
    ),
    Case("api-tokens", "/account/tokens/", (), "post", {"name": "probe token"}, format="multipart"),
    # Steering takes SAEs on causal hosts that the user may see (own's SAE is on an encoder: refused for
    # everyone, and for outsiders exactly as an absent id).
    Case(
        "steering-run-api",
        "/api/v1/steering/",
        ("sae",),
        "post",
        {"sae": "{sae}", "latent": 0, "clamp": 1.0, "prompt": "probe"},
    ),
    Case(
        "steering",
        "/steering/",
        ("sae",),
        "post",
        {"sae": "{sae}", "latent": "0", "clamp": "1.0", "prompt": "probe", "max_new_tokens": "4"},
        format="multipart",
    ),
    Case(
        "job-sweep",
        "/api/v1/jobs/sweep/",
        ("activation_set",),
        "post",
        {"activation_set": "{activation_set}", "arch": "topk", "widths": [16], "ks": [2], "steps": 10},
    ),
    Case(
        "job-launch",
        "/jobs/launch/train/",
        ("activation_set",),
        "post",
        {"activation_set": "{activation_set}", "arch": "topk", "width": "16", "k": "2", "steps": "10"},
        format="multipart",
    ),
    Case("job-launch", "/jobs/launch/mine/", ("sae",), "post", {"sae": "{sae}"}, format="multipart"),
    Case(
        "job-launch",
        "/jobs/launch/capture/",
        ("corpus",),
        "post",
        {"host_model": "{host_model}", "hook_name": "blocks.0.hook_resid_post", "corpus": "{corpus}"},
        format="multipart",
    ),
    Case(
        "job-launch",
        "/jobs/launch/sweep/",
        ("activation_set",),
        "post",
        {"activation_set": "{activation_set}", "arch": "topk", "widths": "16", "ks": "2", "steps": "10"},
        format="multipart",
    ),
    Case("job-cancel-page", "/jobs/{job}/cancel/", ("job",), "post", {}, format="multipart"),
    # Steering lists only SAEs on causal hosts the actor may see: own's private SAE answers as an absent one.
    Case(
        "steering-run-api",
        "/api/v1/steering/",
        ("sae",),
        "post",
        {"sae": "{sae}", "latent": 0, "clamp": 1.0, "prompt": "probe", "max_new_tokens": 2},
    ),
    Case(
        "steering",
        "/steering/",
        ("sae",),
        "post",
        {"sae": "{sae}", "latent": "0", "clamp": "1", "prompt": "probe", "max_new_tokens": "2"},
        format="multipart",
    ),
    # own's causal SAE: own's steerers queue a run; for anyone else it is as unknown as an absent id.
    Case(
        "steering-run-api",
        "/api/v1/steering/",
        ("causal_sae",),
        "post",
        {"sae": "{causal_sae}", "latent": 0, "clamp": 1.0, "prompt": "probe", "max_new_tokens": 2},
    ),
    Case(
        "steering",
        "/steering/",
        ("causal_sae",),
        "post",
        {"sae": "{causal_sae}", "latent": "0", "clamp": "1", "prompt": "probe", "max_new_tokens": "2"},
        format="multipart",
    ),
    # Tokens belong to one user: anyone else's (here own's researcher's) is as unknown as an absent one.
    Case("api-token-revoke", "/account/tokens/{token}/revoke/", ("token",), "post", {}, format="multipart"),
]


def url_patterns():
    """(name, route, callback) of every URL outside the Django admin (the admin has its own test)."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield pattern.name, prefix + str(pattern.pattern), pattern.callback

    return list(walk(get_resolver().url_patterns))
