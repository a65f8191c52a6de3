"""Admin for jobs."""

from django.contrib import admin

from accounts.admin import READ_SCOPES, ConcordAdmin

from .access import jobs_readable, jobs_writable
from .models import Job

READ_SCOPES[Job] = jobs_readable


@admin.register(Job)
class JobAdmin(ConcordAdmin):
    readable = staticmethod(jobs_readable)
    writable = staticmethod(jobs_writable)
    list_display = ["id", "kind", "status", "progress", "queue", "created_by", "created_at"]
    list_filter = ["kind", "status", "queue"]
    readonly_fields = ["log_tail"]
