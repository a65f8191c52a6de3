"""Coordinator pages for rubrics: the list, a new rubric, and the editor that derives the next version
(concepts as a tree, the change shown before it is saved)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import can_manage_rounds

from .. import selectors, services
from ..forms import ConceptFormSet, RubricForm, RubricVersionForm, concepts_initial
from ..models import Rubric
from .common import role_required

PREFIX = "concepts"


def concept_rows(formset) -> list[tuple]:
    """Each form with its depth in the tree its rows describe (from the posted parent codes when bound)."""
    parents = {}
    for form in formset.forms:
        source = form.data if formset.is_bound else form.initial
        code = (source.get(f"{form.prefix}-code", "") if formset.is_bound else source.get("code", "")).strip()
        parent = (
            source.get(f"{form.prefix}-parent_code", "") if formset.is_bound else source.get("parent_code", "")
        ).strip()
        if code:
            parents[code] = parent
    rows = []
    for form in formset.forms:
        code = (form.data.get(f"{form.prefix}-code", "") if formset.is_bound else form.initial.get("code", "")).strip()
        depth, node, seen = 0, parents.get(code, ""), {code}
        while node and node in parents and node not in seen and depth < 5:
            seen.add(node)
            depth, node = depth + 1, parents[node]
        rows.append((form, depth))
    return rows


def concept_formset(request, *, concepts=()):
    """The editor's formset: posted data, or the concepts in tree order."""
    if request.method == "POST":
        return ConceptFormSet(request.POST, prefix=PREFIX)
    ordered = [concept for concept, _ in selectors.concepts_tree(concepts)]
    return ConceptFormSet(initial=concepts_initial(ordered), prefix=PREFIX)


@role_required(can_manage_rounds)
def rubric_list(request):
    rubrics = list(selectors.rubric_list())
    for rubric in rubrics:
        rubric.latest = selectors.rubric_latest_version(rubric=rubric)
    return render(request, "annotation/rubric_list.html", {"rubrics": rubrics})


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def rubric_create(request):
    form = RubricForm(request.POST or None)
    formset = concept_formset(request)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        try:
            version = services.rubric_create(
                name=data["name"],
                description=data["description"],
                guidelines=data["guidelines"],
                concepts=formset.specs(),
                by=request.user,
            )
        except services.InvalidInput as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Rubric {version} created with {version.concepts.count()} concepts.")
            return redirect("rubric-edit", rubric_id=version.rubric_id)
    return render(
        request, "annotation/rubric_create.html", {"form": form, "formset": formset, "rows": concept_rows(formset)}
    )


@role_required(can_manage_rounds)
@require_http_methods(["GET", "POST"])
def rubric_edit(request, rubric_id: int):
    """GET: the latest version as a tree, and its concepts as the editor's starting rows. POST `preview`:
    the diff against the latest version; POST `save` (from the preview): version N + 1."""
    rubric = Rubric.objects.filter(pk=rubric_id).first()
    if rubric is None:
        raise Http404("No such rubric.")
    latest = selectors.rubric_latest_version(rubric=rubric)
    concepts = list(latest.concepts.all())
    form = RubricVersionForm(request.POST or None, initial={"guidelines": latest.guidelines})
    formset = concept_formset(request, concepts=concepts)
    diff = None
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        if request.POST.get("base_version") != str(latest.version):
            form.add_error(None, f"Version {latest.version} was saved while you edited: review the change again.")
        else:
            specs = formset.specs()
            diff = selectors.rubric_diff(
                before=concepts,
                after=specs,
                guidelines_before=latest.guidelines,
                guidelines_after=form.cleaned_data["guidelines"],
            )
            if request.POST.get("action") == "save" and not diff.empty:
                try:
                    version = services.rubric_version_create(
                        parent=latest, guidelines=form.cleaned_data["guidelines"], concepts=specs, by=request.user
                    )
                except services.InvalidInput as error:
                    form.add_error(None, str(error))
                else:
                    messages.success(request, f"Saved {version} ({version.concepts.count()} concepts).")
                    return redirect("rubric-edit", rubric_id=rubric.pk)
    return render(
        request,
        "annotation/rubric_edit.html",
        {
            "rubric": rubric,
            "latest": latest,
            "tree": selectors.concepts_tree(concepts),
            "form": form,
            "formset": formset,
            "rows": concept_rows(formset),
            "diff": diff,
            "versions": rubric.versions.order_by("-version"),
        },
    )
