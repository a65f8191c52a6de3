"""Protected rubric concepts (issue 12, item 3) are set in the rubric editor and the API and survive a new
version: a coordinator fixing a typo in the guidelines must not drop the protected marks."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from accounts.models import Role
from annotation.models import RubricVersion
from tests import factories
from tests.annotation.conftest import client_for

pytestmark = pytest.mark.django_db

PROTECTED = {"DEMOGRAPHICS", "RACE_ETHNICITY", "SEX_GENDER", "INSURANCE", "AGE_BAND"}


class _FormFields(HTMLParser):
    """What a browser submits from the form with id `form_id`: inputs (checkboxes only when checked) and
    textareas."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.textarea = form_id, False, None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            elif a.get("type") not in ("submit", "button"):
                self.fields[a["name"]] = a.get("value") or ""
        elif self.inside and tag == "textarea":
            self.textarea = a["name"]
            self.fields[self.textarea] = ""

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.inside = False


def _form(html: str, form_id: str = "rubric-form") -> dict[str, str]:
    parser = _FormFields(form_id)
    parser.feed(html)
    return parser.fields


def _demo_rubric():
    from config.demo import _rubric

    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=factories.institution("own"))
    return _rubric(by=coordinator), coordinator


def _protected(version: RubricVersion) -> set[str]:
    return set(version.concepts.filter(protected=True).values_list("code", flat=True))


def test_a_guidelines_typo_fixed_in_the_editor_keeps_the_protected_concepts(postgres):
    version, coordinator = _demo_rubric()
    assert _protected(version) == PROTECTED
    client = Client()
    client.force_login(coordinator)
    url = f"/rubrics/{version.rubric_id}/"
    page = client.get(url)
    assert page.status_code == 200
    data = _form(page.content.decode()) | {"guidelines": version.guidelines.replace("protected", "protekted")}
    assert sum(1 for key in data if key.endswith("-protected")) == len(PROTECTED)  # the boxes come ticked
    preview = client.post(url, data | {"action": "preview"})
    assert preview.status_code == 200 and b"Guidelines rewritten" in preview.content
    assert b"diff-changed" not in preview.content  # no concept changes, protected marks included
    saved = client.post(url, data | {"action": "save"})
    assert saved.status_code == 302
    latest = RubricVersion.objects.get(rubric=version.rubric, version=2)
    assert _protected(latest) == PROTECTED


def test_the_editor_marks_and_unmarks_a_protected_concept_and_shows_the_change(postgres):
    version, coordinator = _demo_rubric()
    client = Client()
    client.force_login(coordinator)
    url = f"/rubrics/{version.rubric_id}/"
    data = _form(client.get(url).content.decode())
    rows = {value: key.removesuffix("-code") for key, value in data.items() if key.endswith("-code")}
    data.pop(f"{rows['AGE_BAND']}-protected")
    data[f"{rows['HF']}-protected"] = "on"
    preview = client.post(url, data | {"action": "preview"})
    body = preview.content.decode()
    assert "<strong>HF</strong> protected" in body and "<strong>AGE_BAND</strong> protected" in body
    assert client.post(url, data | {"action": "save"}).status_code == 302
    latest = RubricVersion.objects.get(rubric=version.rubric, version=2)
    assert _protected(latest) == PROTECTED - {"AGE_BAND"} | {"HF"}


def test_the_api_sets_reads_and_keeps_protected_concepts(postgres):
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=factories.institution("own"))
    client = client_for(coordinator)
    created = client.post(
        "/api/v1/rubrics/create/",
        {
            "name": "protected-api",
            "concepts": [{"code": "HF", "name": "Heart failure"}, {"code": "SEX", "name": "Sex", "protected": True}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    marks = {c["code"]: c["protected"] for c in created.json()["concepts"]}
    assert marks["SEX"] is True and marks["HF"] is False
    # a guidelines-only derive keeps the parent's concepts, protected marks included
    derived = client.post(
        f"/api/v1/rubric-versions/{created.json()['id']}/derive/", {"guidelines": "typo fixed"}, format="json"
    )
    assert derived.status_code == 201
    assert {c["code"] for c in derived.json()["concepts"] if c["protected"]} == {"SEX"}
    # a derive that sends the concepts back as read keeps them too
    concepts = [
        {key: c[key] for key in ("code", "name", "description", "parent_code", "synonyms", "protected")}
        for c in derived.json()["concepts"]
    ]
    again = client.post(
        f"/api/v1/rubric-versions/{derived.json()['id']}/derive/",
        {"guidelines": "typo fixed again", "concepts": concepts},
        format="json",
    )
    assert again.status_code == 201
    assert _protected(RubricVersion.objects.get(pk=again.json()["id"])) == {"SEX"}
