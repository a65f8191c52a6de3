"""Admin for institutions, profiles and the (read-only) audit log."""

from django.contrib import admin

from .models import ApiToken, AuditEvent, Institution, Profile
from .permissions import is_admin
from .tokens import api_token_revoke

# model → its app's read function (features/access.py, annotation/access.py, inference/access.py); each
# app's admin registers its own. Lists and foreign-key choices of every Concord admin page come from these.
READ_SCOPES: dict[type, object] = {}


class ConcordAdmin(admin.ModelAdmin):
    """Every Concord admin page asks the permission module: only admins (or superusers) may use it, and
    the rows it lists and offers are those the app's access functions give (`readable`, `writable`)."""

    readable = None  # staticmethod(user -> QuerySet) or None: every row
    writable = None

    def _rows(self, request, scope):
        queryset = super().get_queryset(request)
        return queryset if scope is None else queryset.filter(pk__in=scope(request.user).values("pk"))

    def get_queryset(self, request):
        return self._rows(request, self.readable)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        scope = READ_SCOPES.get(db_field.related_model)
        if scope is not None and "queryset" not in kwargs:
            kwargs["queryset"] = scope(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        scope = READ_SCOPES.get(db_field.related_model)
        if scope is not None and "queryset" not in kwargs:
            kwargs["queryset"] = scope(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return is_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin(request.user)

    def has_add_permission(self, request):
        return is_admin(request.user)

    def has_change_permission(self, request, obj=None):
        if not is_admin(request.user):
            return False
        return obj is None or self.writable is None or self._rows(request, self.writable).filter(pk=obj.pk).exists()

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


class ViewOnlyAdmin(ConcordAdmin):
    """Rows that change only through their services (which keep revisions and audit them): admins read them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
class AuditEventAdmin(ViewOnlyAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id", "ip", "hash"]
    list_filter = ["action"]
    search_fields = ["action", "object_type", "object_id"]


@admin.register(ApiToken)
class ApiTokenAdmin(ConcordAdmin):
    """Admins see and may revoke tokens (set revoked_at); the secret itself was never stored."""

    list_display = ["name", "user", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "hint"]
    readonly_fields = ["user", "name", "hint", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted token leaves no trace; revoke it instead

    @admin.action(description="Revoke the selected tokens (audited)")
    def revoke(self, request, queryset):
        """Revocation through api_token_revoke, so that it is audited like the user's own (it was a bare
        edit of revoked_at)."""
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, by=request.user, ip=request.META.get("REMOTE_ADDR"))
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).")
