"""Who may read and who may write jobs: one queryset function per direction (docs/access.md)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.permissions import JOB_RUNNERS, corpora_visible_to, has_role, jobs_visible_to

from .models import Job, Sweep


def jobs_readable(user) -> QuerySet[Job]:
    """Admins follow every job, researchers their institution's, everyone else the jobs they started."""
    return jobs_visible_to(user, Job.objects.all())


def jobs_writable(user) -> QuerySet[Job]:
    """Jobs a user may cancel: job runners, among the jobs they may follow."""
    return jobs_readable(user) if has_role(user, JOB_RUNNERS) else Job.objects.none()


def sweeps_readable(user) -> QuerySet[Sweep]:
    """Sweeps with a job the user may follow, on an activation set they may see."""
    with_jobs = Sweep.objects.filter(jobs__in=jobs_readable(user)).values("pk")
    return corpora_visible_to(user, Sweep.objects.filter(pk__in=with_jobs), prefix="activation_set__corpus__")
