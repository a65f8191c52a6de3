"""Web forms: they validate input shapes; the services validate meaning."""
from __future__ import annotations

from django import forms

from accounts.models import Institution

from .exports import FORMATS
from .models import RATIONALE_MIN_LENGTH, Round, RubricVersion
from .services import SELECTION_RULES, ConceptSpec, InvalidInput

CONCEPT_LINES_HELP = ("One concept per line: CODE | Name | PARENT_CODE | description (parent and description "
                      "optional). The reserved codes UNINTERPRETABLE, POLYSEMANTIC and ARTIFACT are added for you.")


def concepts_from_lines(text: str) -> list[ConceptSpec]:
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise InvalidInput(f"line {number}: write CODE | Name [| PARENT_CODE | description]")
        specs.append(ConceptSpec(code=cells[0], name=cells[1], parent_code=cells[2] if len(cells) > 2 else "",
                                 description=" | ".join(cells[3:]) if len(cells) > 3 else ""))
    return specs


def concepts_as_lines(version: RubricVersion) -> str:
    return "\n".join(
        " | ".join(part for part in (c.code, c.name, c.parent_code, c.description) if part is not None).rstrip(" |")
        for c in version.concepts.all()
    )


class RoundCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Round.Kind.choices)
    sae = forms.ModelChoiceField(queryset=None, label="SAE")
    rubric_version = forms.ModelChoiceField(queryset=RubricVersion.objects.select_related("rubric"))
    institutions = forms.ModelMultipleChoiceField(queryset=Institution.objects.all(),
                                                  widget=forms.CheckboxSelectMultiple)
    selection_rule = forms.ChoiceField(choices=list(SELECTION_RULES.items()))
    n_latents = forms.IntegerField(min_value=1, required=False, label="Number of latents")
    latent_indices = forms.CharField(required=False, label="Hand list (latent indices, comma-separated)")
    overlap = forms.IntegerField(min_value=1, initial=3, label="Overlap r (raters per latent)")
    repeat_fraction = forms.FloatField(min_value=0, max_value=1, initial=0.1,
                                       label="Hidden repeat fraction (test–retest)")
    min_repeats = forms.IntegerField(required=False, min_value=0, max_value=100, initial=3,
                                     label="At least this many hidden repeats per rater")
    routing_min_rounds = forms.IntegerField(required=False, min_value=1, max_value=20, initial=2,
                                            label="Rounds before a split latent goes to a senior (R)")
    routing_entropy_ceiling = forms.FloatField(required=False, min_value=0, max_value=1, initial=0.5,
                                               label="Ambiguous above this normalised entropy (τ)")
    routing_top_posterior_floor = forms.FloatField(required=False, min_value=0, max_value=1, initial=0.6,
                                                   label="Ambiguous below this top posterior")
    blind = forms.BooleanField(required=False, initial=True)
    deadline = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    seed = forms.IntegerField(required=False, help_text="Leave empty for a random seed (recorded either way).")

    def __init__(self, *args, saes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sae"].queryset = saes

    def clean(self):
        data = super().clean()
        for name in ("min_repeats", "routing_min_rounds", "routing_entropy_ceiling", "routing_top_posterior_floor"):
            if data.get(name) is None:  # left empty: the field's documented default
                data[name] = self.fields[name].initial
        return data

    def clean_latent_indices(self) -> list[int]:
        raw = self.cleaned_data.get("latent_indices", "")
        try:
            return [int(part) for part in raw.replace(";", ",").replace(" ", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("write latent indices as whole numbers separated by commas") from None


class LabelForm(forms.Form):
    concept_code = forms.CharField(max_length=50, error_messages={"required": "Pick a concept."})
    free_text = forms.CharField(max_length=300, required=False)
    confidence = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(1, 6)], coerce=int,
                                        error_messages={"required": "Give your confidence (1–5)."})
    rationale = forms.CharField(min_length=RATIONALE_MIN_LENGTH, widget=forms.Textarea)
    time_spent_seconds = forms.FloatField(min_value=0, required=False)
    idempotency_key = forms.CharField(max_length=64, required=False)


class DetectionForm(forms.Form):
    """One yes/no field per snippet, built from the item list."""

    def __init__(self, *args, items, **kwargs):
        super().__init__(*args, **kwargs)
        for item in items:
            self.fields[f"item_{item.pk}"] = forms.TypedChoiceField(
                choices=[("yes", "Matches"), ("no", "Does not match")], coerce=lambda value: value == "yes",
                widget=forms.RadioSelect, error_messages={"required": "Answer every snippet."},
            )

    def answers(self) -> dict[int, bool]:
        return {int(name.removeprefix("item_")): value for name, value in self.cleaned_data.items()}


class RubricForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))
    concepts = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), help_text=CONCEPT_LINES_HELP)

    def clean_concepts(self) -> list[ConceptSpec]:
        try:
            return concepts_from_lines(self.cleaned_data["concepts"])
        except InvalidInput as error:
            raise forms.ValidationError(str(error)) from None


class FollowUpForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Empty: named after the round.")
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}))
    concepts = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), help_text=CONCEPT_LINES_HELP)
    deadline = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_concepts(self) -> list[ConceptSpec]:
        try:
            return concepts_from_lines(self.cleaned_data["concepts"])
        except InvalidInput as error:
            raise forms.ValidationError(str(error)) from None


class CommentForm(forms.Form):
    latent = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class AdjudicationForm(forms.Form):
    concept = forms.ChoiceField(choices=[])
    rationale = forms.CharField(min_length=RATIONALE_MIN_LENGTH, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args, concepts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["concept"].choices = [(c.pk, f"{c.code} — {c.name}") for c in concepts]


class ExportForm(forms.Form):
    round = forms.IntegerField(required=False, min_value=1, label="Round id")
    sae = forms.IntegerField(required=False, min_value=1, label="SAE id")
    institution = forms.ModelChoiceField(queryset=Institution.objects.all(), required=False, to_field_name="code")
    kind = forms.ChoiceField(choices=[("labels", "Labels (long format)"), ("latents", "Per latent (soft labels)")])
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS])
    include_simulated = forms.BooleanField(required=False, label="Include rounds labelled by simulated raters (demo)")

    def clean(self):
        data = super().clean()
        if not (data.get("round") or data.get("sae") or data.get("institution")):
            raise forms.ValidationError("Choose a scope: a round, an SAE or an institution.")
        return data
