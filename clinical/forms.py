"""Forms of the clinical pages."""

from __future__ import annotations

from django import forms

from .services import max_note_chars


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
