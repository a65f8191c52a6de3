"""Server-rendered pages of annotation; each asks accounts.permissions before it shows or changes anything."""

from .coordinator import (
    round_action,
    round_create,
    round_dashboard,
    round_discussion,
    round_follow_up,
    round_list,
    round_statistics_status,
)
from .home import home
from .labelling import item, queue, round_queue
from .review import adjudication_decide, adjudication_queue, export, latent_browser, latent_detail
from .rubrics import rubric_create, rubric_edit, rubric_list

__all__ = [
    "adjudication_decide",
    "adjudication_queue",
    "export",
    "home",
    "item",
    "latent_browser",
    "latent_detail",
    "queue",
    "round_action",
    "round_create",
    "round_dashboard",
    "round_discussion",
    "round_follow_up",
    "round_list",
    "round_queue",
    "round_statistics_status",
    "rubric_create",
    "rubric_edit",
    "rubric_list",
]
