"""Who may read and who may write jobs: one queryset function per direction (docs/access.md)."""
from __future__ import annotations

from django.db.models import QuerySet

from accounts.permissions import JOB_RUNNERS, has_role, jobs_visible_to

from .models import Job


def jobs_readable(user) -> QuerySet[Job]:
    """Admins follow every job, researchers their institution's, everyone else the jobs they started."""
    return jobs_visible_to(user, Job.objects.all())


def jobs_writable(user) -> QuerySet[Job]:
    """Jobs a user may cancel: job runners, among the jobs they may follow."""
    return jobs_readable(user) if has_role(user, JOB_RUNNERS) else Job.objects.none()
