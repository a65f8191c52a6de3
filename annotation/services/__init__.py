"""Write paths of annotation: keyword-only `<entity>_<verb>` services that own transactions and audit events."""

from .adjudication import adjudication_record
from .assignments import PlannedAssignment, assignment_plan
from .detection import detection_accuracy_compute, detection_items_create, detection_response_submit
from .errors import InvalidInput, QueueUnavailable, RoundStateError
from .labels import LabelSubmission, label_submit
from .rounds import (
    SELECTION_RULES,
    comment_create,
    latents_select,
    round_close,
    round_create,
    round_deadline_set,
    round_delete,
    round_follow_up_create,
    round_open,
    round_reveal,
)
from .rubrics import ConceptSpec, rubric_create, rubric_version_create
from .statistics import (
    RoundStatistics,
    round_statistics_compute,
    routing_config_from_fields,
    sae_consensus_compute,
)
from .statistics_jobs import round_statistics_request, round_statistics_run, round_statistics_sweep

__all__ = [
    "SELECTION_RULES",
    "ConceptSpec",
    "InvalidInput",
    "LabelSubmission",
    "PlannedAssignment",
    "QueueUnavailable",
    "RoundStateError",
    "RoundStatistics",
    "adjudication_record",
    "assignment_plan",
    "comment_create",
    "detection_accuracy_compute",
    "detection_items_create",
    "detection_response_submit",
    "label_submit",
    "latents_select",
    "round_close",
    "round_create",
    "round_deadline_set",
    "round_delete",
    "round_follow_up_create",
    "round_open",
    "round_reveal",
    "round_statistics_compute",
    "routing_config_from_fields",
    "round_statistics_request",
    "round_statistics_run",
    "round_statistics_sweep",
    "rubric_create",
    "rubric_version_create",
    "sae_consensus_compute",
]
