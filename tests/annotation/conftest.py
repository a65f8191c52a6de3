"""Fixtures for annotation tests: a two-institution world behind the API, and Debian's Chromium for e2e."""

from __future__ import annotations

import os
import shutil

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from annotation import services
from annotation.models import Assignment, Round
from tests import factories
from tests.annotation import worlds
from tests.conftest import ROOT, _unavailable

ROLES = [Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR, Role.RESEARCHER, Role.ADMIN]
WHERE = ["own", "other"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def api_world(postgres):
    """Institution `own` holds a private corpus and an SAE trained on it; a calibration round of own's
    coordinator with three own physicians is labelled, closed and revealed; a second, open round exists.
    `other` is another institution with people of every role and no part in any of it."""
    own, other = factories.institution("own"), factories.institution("other")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="coord-own")
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own, username=f"rater-own-{i}") for i in range(3)]
    sae = worlds.sae_with_examples(n_latents=4, institution=own)
    version = worlds.rubric(by=coordinator)
    revealed = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=2
    )
    worlds.label_everything(revealed, choose=lambda a: "HF" if a.latent.index % 2 else "AKI")
    worlds.close_round(round=revealed, by=coordinator)
    services.round_reveal(round=revealed, by=coordinator)
    open_round = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=2, kind="production"
    )
    return {
        "own": own,
        "other": other,
        "coordinator": coordinator,
        "raters": raters,
        "sae": sae,
        "version": version,
        "revealed": revealed,
        "open": open_round,
    }


def actor(world, role: str, where: str):
    """The physician of `own` is a rater of the world's rounds; everyone else is a fresh user."""
    if role == Role.PHYSICIAN and where == "own":
        return world["raters"][0]
    if role == Role.COORDINATOR and where == "own":
        return factories.user(role=role, institution_obj=world["own"])  # a colleague of the round's coordinator
    return factories.user(role=role, institution_obj=world[where])


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def own_assignment(world, round_key: str = "open") -> Assignment:
    return Assignment.objects.filter(round=world[round_key], rater=world["raters"][0], is_repeat=False).first()


def set_status(round_: Round, status: str) -> None:
    Round.objects.filter(pk=round_.pk).update(status=status)


# -- Playwright on Debian's Chromium ------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


# One Playwright and one Chromium per process: test modules elsewhere import this fixture, and each import
# is a separate session fixture to pytest; a second sync Playwright in the same thread would fail.
_SHARED_BROWSER: dict = {}


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for the e2e session. Missing Chromium skips locally and fails under CI=true."""
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (python) is not installed")
    if not _SHARED_BROWSER:
        # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
        # browser steps are still synchronous and safe, which this flag tells Django.
        _SHARED_BROWSER["previous"] = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        ARTIFACTS.mkdir(exist_ok=True)
        manager = sync_playwright().start()
        _SHARED_BROWSER.update(
            manager=manager, users=0, browser=manager.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        )
    _SHARED_BROWSER["users"] += 1
    try:
        yield _SHARED_BROWSER["browser"]
    finally:
        _SHARED_BROWSER["users"] -= 1
        if _SHARED_BROWSER["users"] == 0:
            _SHARED_BROWSER["browser"].close()
            _SHARED_BROWSER["manager"].stop()
            previous = _SHARED_BROWSER["previous"]
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
            _SHARED_BROWSER.clear()


@pytest.fixture
def browser_page(chromium):
    """A fresh context (own cookies) per test; every dialog is recorded so a test can assert none fired."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.dialogs = []
    page.accept_dialogs = False  # a test sets it to answer confirm() with OK

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        if page.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
