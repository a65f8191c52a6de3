"""Admin for institutions, profiles and the (read-only) audit log."""
from django.contrib import admin

from .models import ApiToken, AuditEvent, Institution, Profile
from .permissions import is_admin


class ConcordAdmin(admin.ModelAdmin):
    """Every Concord admin page asks the permission module: only admins (or superusers) may use it."""

    def has_module_permission(self, request):
        return is_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin(request.user)

    def has_add_permission(self, request):
        return is_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return is_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_admin(request.user)


@admin.register(Institution)
class InstitutionAdmin(ConcordAdmin):
    list_display = ["name", "code", "created_at"]
    search_fields = ["name", "code"]


@admin.register(Profile)
class ProfileAdmin(ConcordAdmin):
    list_display = ["user", "institution", "role", "specialty", "pseudonym"]
    list_filter = ["role", "institution"]
    search_fields = ["user__username", "pseudonym"]
    readonly_fields = ["pseudonym"]


@admin.register(AuditEvent)
class AuditEventAdmin(ConcordAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id", "ip", "hash"]
    list_filter = ["action"]
    search_fields = ["action", "object_type", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ConcordAdmin):
    """Admins see and may revoke tokens (set revoked_at); the secret itself was never stored."""

    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "hint"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False
