"""Admin for jobs."""
from django.contrib import admin

from accounts.admin import ConcordAdmin

from .models import Job


@admin.register(Job)
class JobAdmin(ConcordAdmin):
    list_display = ["id", "kind", "status", "progress", "queue", "created_by", "created_at"]
    list_filter = ["kind", "status", "queue"]
    readonly_fields = ["log_tail"]
