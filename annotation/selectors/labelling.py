"""What a rater sees: their queue and, per item, the latent's evidence; never anyone else's label
(before reveal) nor anything that would anchor them (corpus tags, tag statistics, consensus)."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from django.db.models import Count, Exists, OuterRef

from accounts.permissions import corpora_visible_to
from features.models import Latent, LatentExample

from ..models import Assignment, Concept, DetectionItem, DetectionResponse, Label, Round

# Tokens either side of an example's peak that the page shows (SAE-dashboard windows).
WINDOW_BEFORE = 24
WINDOW_AFTER = 16
TOP_EXAMPLES = 20
QUANTILE_GROUPS = 10
PER_QUANTILE_GROUP = 5
# A labelling item shows a seeded draw from the mined pools (15 of the 20 top examples, 4 of the 5 per
# quantile group), so that a hidden repeat shows a different draw of the same latent's examples.
ITEM_TOP_DRAW = 15
ITEM_PER_QUANTILE_DRAW = 4
_SPECIAL_TOKEN = re.compile(r"^(\[(CLS|SEP|PAD|MASK)\]|</?s>|<pad>|<\|endoftext\|>)$")


class TokenView(NamedTuple):
    """A named tuple, not a frozen dataclass: a labelling page builds ~2,500 of them, and a frozen
    dataclass's __init__ (object.__setattr__ per field) was a third of the page's selector time."""

    text: str
    activation: float | None  # None: plain text between tokens
    shade: float  # activation / the latent's max activation, in [0, 1]
    space: str = ""  # whitespace before the token, kept outside its highlight


@dataclass(frozen=True)
class ExampleView:
    max_activation: float
    tokens: list[TokenView]
    cut_left: bool
    cut_right: bool
    # The original text, cut into plain pieces (activation None) and token pieces, when every shown token
    # could be found in the snippet's text; else empty and the page shows `tokens` (vocabulary strings).
    segments: list[TokenView] = ()


@dataclass(frozen=True)
class QuantileGroup:
    bin: int
    low: float
    high: float
    examples: list[ExampleView]


@dataclass(frozen=True)
class Evidence:
    latent_id: int
    density: float | None
    max_activation: float | None
    top: list[ExampleView]
    quantile_groups: list[QuantileGroup]
    histogram_counts: list[int]
    histogram_edges: list[float]
    shuffled: bool = False
    figures_hidden: bool = False  # density, max activation, histogram and activation values withheld


def rater_rounds(*, user) -> list[Round]:
    """Rounds the user holds assignments in (not drafts), each with `n_assigned` and `n_done`."""
    rounds = list(
        Round.objects.filter(assignments__rater=user)
        .exclude(status=Round.Status.DRAFT)
        .distinct()
        .select_related("sae", "rubric_version__rubric")
        .order_by("status", "-created_at")
    )
    assigned = dict(
        Assignment.objects.filter(rater=user).values("round").annotate(n=Count("pk")).values_list("round", "n")
    )
    labelled = dict(
        Label.objects.filter(assignment__rater=user)
        .values("assignment__round")
        .annotate(n=Count("pk"))
        .values_list("assignment__round", "n")
    )
    answered = dict(
        DetectionResponse.objects.filter(rater=user)
        .values("item__round")
        .annotate(n=Count("item__latent", distinct=True))
        .values_list("item__round", "n")
    )
    for round_ in rounds:
        round_.n_assigned = assigned.get(round_.pk, 0)
        round_.n_done = (answered if round_.kind == Round.Kind.DETECTION else labelled).get(round_.pk, 0)
    return rounds


def rater_queue(*, user, round: Round) -> list[Assignment]:  # noqa: A002
    """The rater's items in queue order, each with `done` set. Repeats are not marked."""
    assignments = Assignment.objects.filter(round=round, rater=user).select_related("latent").order_by("position")
    if round.kind == Round.Kind.DETECTION:
        assignments = assignments.annotate(
            done=Exists(
                DetectionResponse.objects.filter(
                    item__round_id=OuterRef("round_id"), item__latent_id=OuterRef("latent_id"), rater=user
                )
            )
        )
    else:
        assignments = assignments.annotate(done=Exists(Label.objects.filter(assignment_id=OuterRef("pk"))))
    return list(assignments)


def rater_assignment(*, user, round_id: int, position: int) -> Assignment | None:
    return (
        Assignment.objects.filter(round_id=round_id, rater=user, position=position)
        .select_related("round__rubric_version", "latent__sae")
        .first()
    )


def rater_label(*, assignment: Assignment) -> Label | None:
    return Label.objects.filter(assignment=assignment).select_related("concept").first()


def _display_tokens(tokens: list[str]) -> list[str]:
    """Vocabulary strings as text: WordPiece '##' joins the previous token, 'Ġ'/'▁' mean a space."""
    carries_space = any(token[:1] in ("Ġ", "▁", " ") for token in tokens)
    shown = []
    for position, token in enumerate(tokens):
        if _SPECIAL_TOKEN.match(token):
            shown.append("")
        elif carries_space:
            shown.append(" " + token[1:] if token[:1] in ("Ġ", "▁") else token)
        elif token.startswith("##"):
            shown.append(token[2:])
        else:
            shown.append(token if position == 0 else " " + token)
    return shown


def _token_key(token: str) -> str:
    """A vocabulary string as it appears in text (WordPiece '##', BPE 'Ġ', SentencePiece '▁' removed)."""
    if token.startswith("##"):
        token = token[2:]
    return token.lstrip("Ġ▁ ").replace("Ċ", "\n")


def token_character_spans(*, text: str, tokens: list[str]) -> list[tuple[int, int] | None]:
    """Where each token lies in `text` (its character span), found by walking the text once, ignoring
    case (uncased tokenizers lower-case). A token that cannot be found (a special or unknown token)
    gets None; the walk never moves backwards, so spans are in order and do not overlap."""
    lowered = text.lower()
    cursor, spans, started = 0, [], False
    for token in tokens:
        key = _token_key(token).lower()
        if not key or _SPECIAL_TOKEN.match(token) or token == "[UNK]":
            spans.append(None)
            continue
        at = lowered.find(key, cursor)
        # A token is expected right after the previous one, past whitespace: a far match is a wrong one. The
        # first token may start anywhere (an example mined with a window begins mid-snippet).
        if at < 0 or (started and lowered[cursor:at].strip()):
            spans.append(None)
            continue
        spans.append((at, at + len(key)))
        cursor, started = at + len(key), True
    return spans


def _text_segments(*, text: str, spans, activations, scale: float, start: int, stop: int) -> list[TokenView]:
    """The original text of tokens start..stop-1 as plain and shaded pieces."""
    found = [(i, span) for i, span in enumerate(spans[start:stop], start=start) if span is not None]
    if not found:
        return []
    segments, cursor = [], found[0][1][0]
    for i, (lo, hi) in found:
        if lo > cursor:
            segments.append(TokenView(text=text[cursor:lo], activation=None, shade=0.0))
        value = activations[i]
        segments.append(TokenView(text=text[lo:hi], activation=value, shade=min(max(value / scale, 0.0), 1.0)))
        cursor = hi
    return segments


class ExampleRow(NamedTuple):
    """The fields of a LatentExample (and its snippet's text) that the evidence shows."""

    kind: str
    rank: int
    max_activation: float
    tokens: list[str]
    activations: list[float]
    text: str


def example_window(*, example: ExampleRow | LatentExample, scale: float, text: str | None = None) -> ExampleView:
    """The tokens around the example's peak, each shaded by activation / scale; with the snippet's
    `text`, the original characters of those tokens, shaded per token."""
    tokens, activations = list(example.tokens), [float(a) for a in example.activations]
    n = min(len(tokens), len(activations))
    tokens, activations = tokens[:n], activations[:n]
    peak = max(range(n), key=activations.__getitem__) if n else 0
    start, stop = max(0, peak - WINDOW_BEFORE), min(n, peak + WINDOW_AFTER + 1)
    scale = scale if scale > 0 else 1.0
    segments: list[TokenView] = []
    if text:
        # The walk is sequential, so the tokens after the window cannot change the spans inside it.
        spans = token_character_spans(text=text, tokens=tokens[:stop])
        window = [
            span
            for span, token in zip(spans[start:stop], tokens[start:stop], strict=True)
            if not _SPECIAL_TOKEN.match(token)
        ]
        # Only when (nearly) every token was found: else the vocabulary strings are the truer picture.
        if window and sum(span is not None for span in window) >= 0.9 * len(window):
            segments = _text_segments(
                text=text, spans=spans, activations=activations, scale=scale, start=start, stop=stop
            )
    views: list[TokenView] = []
    for text, value in zip(_display_tokens(tokens[start:stop]), activations[start:stop], strict=True):
        stripped = text.lstrip()
        if stripped:
            views.append(
                TokenView(
                    text=stripped,
                    activation=value,
                    shade=min(max(value / scale, 0.0), 1.0),
                    space=text[: len(text) - len(stripped)] if views else "",
                )
            )
    return ExampleView(
        max_activation=float(example.max_activation),
        tokens=views,
        cut_left=start > 0,
        cut_right=stop < n,
        segments=segments,
    )


def latent_evidence(*, latent: Latent, user, shuffle_seed: int | None = None) -> Evidence:
    """The dashboard evidence of one latent: ~20 top examples, ~10 quantile groups of ~5, the histogram.

    With a `shuffle_seed` (the assignment's id: a labelling item) each section is a seeded draw from the
    latent's pools, shuffled, and the summary figures that are the same on every showing of the latent
    (density, max activation, the histogram) are withheld — on every item alike, so that a hidden repeat
    shows a different draw of examples and no figure that marks it as seen before."""
    # Rows, not model instances: building 70 instances with their snippets was a sixth of the page's time.
    examples = [
        ExampleRow(*row)
        for row in corpora_visible_to(
            user,
            LatentExample.objects.filter(latent=latent).exclude(kind=LatentExample.Kind.NEGATIVE),
            prefix="snippet__corpus__",
        )
        .order_by("kind", "rank")
        .values_list("kind", "rank", "max_activation", "tokens", "activations", "snippet__text")
    ]
    scale = latent.max_activation or max((e.max_activation for e in examples), default=0.0)
    rng = random.Random(shuffle_seed) if shuffle_seed is not None else None
    top_pool = [e for e in examples if e.kind == LatentExample.Kind.TOP]
    if rng is not None and len(top_pool) > ITEM_TOP_DRAW:
        top_pool = sorted(rng.sample(top_pool, ITEM_TOP_DRAW), key=lambda e: e.rank)
    top = [example_window(example=e, scale=scale, text=e.text) for e in top_pool][:TOP_EXAMPLES]
    grouped: dict[int, list[ExampleRow]] = defaultdict(list)
    for example in examples:
        if example.kind == LatentExample.Kind.QUANTILE:
            grouped[example.rank].append(example)
    groups = []
    for bin_, members in sorted(grouped.items(), reverse=True)[:QUANTILE_GROUPS]:
        members = members[:PER_QUANTILE_GROUP]
        if rng is not None and len(members) > ITEM_PER_QUANTILE_DRAW:
            members = rng.sample(members, ITEM_PER_QUANTILE_DRAW)
        views = [example_window(example=e, scale=scale, text=e.text) for e in members]
        if rng is not None:
            rng.shuffle(views)
        values = [e.max_activation for e in members]
        groups.append(QuantileGroup(bin=bin_, low=min(values), high=max(values), examples=views))
    if rng is not None:
        rng.shuffle(top)
    histogram = latent.histogram or {}
    if rng is not None:
        return Evidence(
            latent_id=latent.pk,
            density=None,
            max_activation=None,
            top=top,
            quantile_groups=groups,
            histogram_counts=[],
            histogram_edges=[],
            shuffled=True,
            figures_hidden=True,
        )
    return Evidence(
        latent_id=latent.pk,
        density=latent.density,
        max_activation=scale,
        top=top,
        quantile_groups=groups,
        histogram_counts=[int(c) for c in histogram.get("counts", [])],
        histogram_edges=[float(e) for e in histogram.get("edges", [])],
        shuffled=rng is not None,
    )


def rubric_concepts(*, round: Round) -> list[Concept]:  # noqa: A002
    """The round's concepts, tree order: each parent followed by its children, reserved codes last."""
    concepts = list(round.rubric_version.concepts.all())
    children: dict[str, list[Concept]] = defaultdict(list)
    codes = {c.code for c in concepts}
    for concept in concepts:
        children[concept.parent_code if concept.parent_code in codes else ""].append(concept)
    ordered: list[Concept] = []

    def walk(parent: str, depth: int) -> None:
        for concept in sorted(children.get(parent, []), key=lambda c: (c.code in _RESERVED, c.name.lower())):
            concept.depth = depth
            ordered.append(concept)
            walk(concept.code, depth + 1)

    walk("", 0)
    return ordered


_RESERVED = {"UNINTERPRETABLE", "POLYSEMANTIC", "ARTIFACT"}


def visible_co_labels(*, assignment: Assignment, user) -> list[Label]:
    """Other raters' labels on this item's latent: only in a non-blind open round, only after the rater
    gave their own label, and never from a hidden repeat. Blind rounds show nothing before reveal."""
    round_ = assignment.round
    if round_.blind or round_.status != Round.Status.OPEN:
        return []
    if not Label.objects.filter(assignment=assignment).exists():
        return []
    return list(
        Label.objects.filter(
            assignment__round=round_, assignment__latent_id=assignment.latent_id, assignment__is_repeat=False
        )
        .exclude(assignment__rater=user)
        .select_related("concept", "assignment__rater__profile")
    )


def detection_items(*, assignment: Assignment, user) -> list[DetectionItem]:
    """The latent's detection snippets in their shuffled order, each with the rater's answer so far
    (`answer`: True, False or None); whether a snippet activates is never exposed."""
    items = list(
        DetectionItem.objects.filter(round_id=assignment.round_id, latent_id=assignment.latent_id)
        .select_related("snippet")
        .order_by("position")
    )
    answers = dict(DetectionResponse.objects.filter(item__in=items, rater=user).values_list("item_id", "says_match"))
    for item in items:
        item.answer = answers.get(item.pk)
    return items
