"""Read paths of annotation, each filtered by what the caller may see."""

from .browser import adjudication_concepts, adjudication_queue, latent_browse, latent_history, latent_label_distribution
from .context import LatentContext, latent_context
from .labelling import (
    Evidence,
    detection_items,
    latent_evidence,
    rater_assignment,
    rater_label,
    rater_queue,
    rater_rounds,
    rubric_concepts,
    visible_co_labels,
)
from .rounds import (
    assignment_list,
    author_pseudonym,
    comment_list,
    round_alpha_trend,
    round_distribution,
    round_latents_by_entropy,
    round_list,
    round_progress,
    round_reports,
)
from .rubrics import RubricDiff, concepts_tree, rubric_diff, rubric_latest_version, rubric_list
from .statistics import StatisticsState, round_statistics_state, rounds_statistics_state, sae_statistics_state

__all__ = [
    "Evidence",
    "LatentContext",
    "RubricDiff",
    "StatisticsState",
    "adjudication_concepts",
    "adjudication_queue",
    "assignment_list",
    "author_pseudonym",
    "comment_list",
    "concepts_tree",
    "detection_items",
    "latent_browse",
    "latent_context",
    "latent_evidence",
    "latent_history",
    "latent_label_distribution",
    "rater_assignment",
    "rater_label",
    "rater_queue",
    "rater_rounds",
    "round_alpha_trend",
    "round_distribution",
    "round_latents_by_entropy",
    "round_list",
    "round_progress",
    "round_reports",
    "round_statistics_state",
    "rounds_statistics_state",
    "rubric_concepts",
    "rubric_diff",
    "rubric_latest_version",
    "rubric_list",
    "sae_statistics_state",
    "visible_co_labels",
]
