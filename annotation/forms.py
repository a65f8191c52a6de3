"""Web forms: they validate input shapes; the services validate meaning."""

from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.models import Institution

from .exports import FORMATS
from .models import RATIONALE_MIN_LENGTH, Round, RubricVersion
from .services import SELECTION_RULES, ConceptSpec


class RoundCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Round.Kind.choices)
    sae = forms.ModelChoiceField(queryset=None, label="SAE")
    rubric_version = forms.ModelChoiceField(queryset=RubricVersion.objects.select_related("rubric"))
    institutions = forms.ModelMultipleChoiceField(
        queryset=Institution.objects.all(), widget=forms.CheckboxSelectMultiple
    )
    selection_rule = forms.ChoiceField(choices=list(SELECTION_RULES.items()))
    n_latents = forms.IntegerField(min_value=1, required=False, label="Number of latents")
    latent_indices = forms.CharField(required=False, label="Hand list (latent indices, comma-separated)")
    overlap = forms.IntegerField(min_value=1, initial=3, label="Overlap r (raters per latent)")
    repeat_fraction = forms.FloatField(
        min_value=0, max_value=1, initial=0.1, label="Hidden repeat fraction (test–retest)"
    )
    min_repeats = forms.IntegerField(
        required=False, min_value=0, max_value=100, initial=3, label="At least this many hidden repeats per rater"
    )
    routing_min_rounds = forms.IntegerField(
        required=False, min_value=1, max_value=20, initial=2, label="Rounds before a split latent goes to a senior (R)"
    )
    routing_entropy_ceiling = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0.5, label="Ambiguous above this normalised entropy (τ)"
    )
    routing_top_posterior_floor = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0.6, label="Ambiguous below this top posterior"
    )
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
    confidence = forms.TypedChoiceField(
        choices=[(i, str(i)) for i in range(1, 6)],
        coerce=int,
        error_messages={"required": "Give your confidence (1–5)."},
    )
    rationale = forms.CharField(
        min_length=RATIONALE_MIN_LENGTH, max_length=settings.MAX_TEXT_CHARS, widget=forms.Textarea
    )
    time_spent_seconds = forms.FloatField(min_value=0, required=False)
    idempotency_key = forms.CharField(max_length=64, required=False)


class DetectionForm(forms.Form):
    """One yes/no field per snippet, built from the item list."""

    def __init__(self, *args, items, **kwargs):
        super().__init__(*args, **kwargs)
        for item in items:
            self.fields[f"item_{item.pk}"] = forms.TypedChoiceField(
                choices=[("yes", "Matches"), ("no", "Does not match")],
                coerce=lambda value: value == "yes",
                widget=forms.RadioSelect,
                error_messages={"required": "Answer every snippet."},
            )

    def answers(self) -> dict[int, bool]:
        return {int(name.removeprefix("item_")): value for name, value in self.cleaned_data.items()}


class ConceptForm(forms.Form):
    """One concept of the rubric editor; an untouched blank row is skipped, a row marked delete dropped."""

    code = forms.CharField(max_length=50, widget=forms.TextInput(attrs={"size": 12, "class": "code-input"}))
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 24}))
    parent_code = forms.CharField(
        max_length=50, required=False, label="Parent code", widget=forms.TextInput(attrs={"size": 12})
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 34}))
    synonyms = forms.CharField(required=False, help_text="comma-separated", widget=forms.TextInput(attrs={"size": 28}))
    protected = forms.BooleanField(required=False, help_text="a protected attribute (race, sex, insurance, age band)")

    def clean_synonyms(self) -> tuple[str, ...]:
        seen: list[str] = []
        for synonym in self.cleaned_data.get("synonyms", "").split(","):
            synonym = synonym.strip()
            if synonym and synonym not in seen:
                seen.append(synonym)
        return tuple(seen)


class _ConceptFormSet(forms.BaseFormSet):
    def specs(self) -> list[ConceptSpec]:
        """The concepts of the valid formset, in row order, without deleted and untouched blank rows."""
        specs = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or (self.can_delete and self._should_delete_form(form)):
                continue
            specs.append(
                ConceptSpec(
                    code=data["code"].strip(),
                    name=data["name"].strip(),
                    parent_code=data.get("parent_code", "").strip(),
                    description=data.get("description", "").strip(),
                    synonyms=data.get("synonyms", ()),
                    protected=bool(data.get("protected")),
                )
            )
        return specs


ConceptFormSet = forms.formset_factory(ConceptForm, formset=_ConceptFormSet, extra=3, can_delete=True)


def concepts_initial(concepts) -> list[dict]:
    """Formset rows for concepts (in tree order, each with `depth`)."""
    return [
        {
            "code": c.code,
            "name": c.name,
            "parent_code": c.parent_code,
            "description": c.description,
            "synonyms": ", ".join(c.synonyms or []),
            "protected": c.protected,
        }
        for c in concepts
    ]


class RubricForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))


class RubricVersionForm(forms.Form):
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}))


class DeadlineForm(forms.Form):
    deadline = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="Empty: no deadline."
    )


class FollowUpForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Empty: named after the round.")
    # One per rendering of the form: submitting it twice makes one follow-up, not two.
    token = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}))
    deadline = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class CommentForm(forms.Form):
    latent = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(max_length=settings.MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": 2}))


class AdjudicationForm(forms.Form):
    concept = forms.ChoiceField(choices=[])
    rationale = forms.CharField(
        min_length=RATIONALE_MIN_LENGTH, max_length=settings.MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": 4})
    )

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
