"""Web pages of accounts: the caller's own API tokens (create, see last use, revoke)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .models import ApiToken
from .permissions import role_of
from .tokens import api_token_create, api_token_revoke


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “export script on ward PC”.")


def _may_use_api(user) -> bool:
    return role_of(user) is not None


@never_cache  # the page shows a new secret once; no cache may keep it
@login_required
def api_tokens(request):
    if not _may_use_api(request.user):
        return HttpResponseForbidden("Your account has no role; ask an administrator.")
    form = ApiTokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        token, new_secret = api_token_create(
            user=request.user, name=form.cleaned_data["name"], ip=request.META.get("REMOTE_ADDR")
        )
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/api_tokens.html", {"form": form, "tokens": tokens, "new_secret": new_secret})


@require_POST
@login_required
def api_token_revoke_view(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    api_token_revoke(token=token, by=request.user, ip=request.META.get("REMOTE_ADDR"))
    return redirect("api-tokens")
