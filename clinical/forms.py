"""Forms of the clinical pages."""

from __future__ import annotations

from django import forms
from django.conf import settings

from inference.drift import DRIFT_CONFIG_KEYS

from .services import max_note_chars

# What each drift threshold means, in the form's words (definitions: docs/algorithms.md, "Drift audit").
THRESHOLD_LABELS = {
    "fdr": "False discovery rate of the per-latent tests (Benjamini–Hochberg)",
    "min_abs_log2_ratio": "Flag a latent only when |log₂ rate ratio| is at least",
    "min_rate": "Test a latent only when its firing rate in either corpus is at least",
    "pseudocount": "Pseudocount of the log ratio",
    "divergence_threshold": "Drift when the Jensen–Shannon divergence of firing (bits) is at least",
    "fve_drop_threshold": "Drift when FVE drops (reference − corpus) by at least",
    "flagged_share_threshold": "Drift when the share of tested latents flagged is at least",
    "l0_distance_threshold": "Drift when the active-count distributions differ (total variation) by at least",
}


class ExplainForm(forms.Form):
    sae = forms.TypedChoiceField(coerce=int, label="SAE")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "cols": 100}), label="Note", strip=False)
    only_this_layer = forms.BooleanField(
        required=False, label="Only this SAE (hide the layer-by-layer flow of the other SAEs on the same host model)"
    )
    store = forms.BooleanField(
        required=False, label="Keep this note (otherwise it is not stored; kept notes are PHI-scrubbed)"
    )

    def __init__(self, *args, saes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sae"].choices = [(sae.pk, f"{sae.name} · {sae.hook_point}") for sae in saes]
        limit = max_note_chars()
        self.fields["text"].widget.attrs["maxlength"] = str(limit)  # the browser's hint; the service decides
        self.fields["text"].help_text = f"At most {limit} characters."


class DriftForm(forms.Form):
    sae = forms.TypedChoiceField(coerce=int, label="SAE")
    corpus = forms.TypedChoiceField(coerce=int, label="Corpus to audit")
    reference = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Reference corpus (empty: the SAE's training corpus)"
    )

    def __init__(self, *args, saes=(), corpora=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sae"].choices = [(sae.pk, sae.name) for sae in saes]
        self.fields["corpus"].choices = [(corpus.pk, corpus.name) for corpus in corpora]
        self.fields["reference"].choices = [("", "—")] + [(corpus.pk, corpus.name) for corpus in corpora]
        for key in DRIFT_CONFIG_KEYS:  # empty: the platform's default, shown as the placeholder
            default = settings.DRIFT_THRESHOLDS[key]
            self.fields[key] = forms.FloatField(
                required=False,
                min_value=0,
                label=THRESHOLD_LABELS[key],
                help_text=f"default {default:g}",
                widget=forms.NumberInput(attrs={"step": "any", "placeholder": f"{default:g}"}),
            )

    def thresholds(self) -> dict[str, float]:
        """The overrides the user typed (validated ones only; call after is_valid)."""
        return {key: self.cleaned_data[key] for key in DRIFT_CONFIG_KEYS if self.cleaned_data.get(key) is not None}
