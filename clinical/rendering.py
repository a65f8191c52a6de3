"""The explained note as HTML: every token shaded by its strongest labelled latent, escaped piece by piece."""

from __future__ import annotations

from html import escape

from django.utils.safestring import mark_safe

from annotation.models import RESERVED_CONCEPTS


def note_html(*, text: str, tokens: list[dict]) -> str:
    """Text between tokens is copied as it is; each token is a span with its shade (--a, the strongest
    labelled latent's activation / its corpus max), the concepts it carries (data-codes, for the filter)
    and its top latents on hover."""
    parts, cursor = [], 0
    for token in tokens:
        if token["end"] <= cursor:  # a span already drawn (tokenizers that overlap offsets)
            continue
        start = max(token["start"], cursor)
        parts.append(escape(text[cursor:start]))
        labelled = [
            latent for latent in token["latents"] if latent["label"] and latent["label"] not in RESERVED_CONCEPTS
        ]
        shades = {}
        for latent in labelled:
            shade = latent["relative"] if latent["relative"] is not None else 1.0
            shades[latent["label"]] = max(shades.get(latent["label"], 0.0), shade)
        shade = max(shades.values(), default=0.0)
        hover = "; ".join(
            f"#{latent['index']} {latent['label'] or 'unlabelled'} {latent['activation']:.2f} ({latent['uncertainty']})"
            for latent in token["latents"][:4]
        )
        codes = " ".join(f"{code}:{value:.3f}" for code, value in sorted(shades.items()))
        parts.append(
            f'<span class="tok" style="--a:{shade:.3f}" data-a="{shade:.3f}" data-codes="{escape(codes)}" '
            f'title="{escape(hover)}">{escape(text[start : token["end"]])}</span>'
        )
        cursor = token["end"]
    parts.append(escape(text[cursor:]))
    return mark_safe("".join(parts))
