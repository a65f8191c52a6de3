"""Helpers shared by the annotation pages: role gates and round look-ups that ask the permission module."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect

from .. import access, selectors
from ..models import Round
from ..services import InvalidInput, QueueUnavailable, RoundStateError


def role_required(predicate):
    """Log in first; then the predicate from accounts.permissions must hold, else 403."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not predicate(request.user):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def visible_round(request, round_id: int) -> Round:
    """A round the user may see at all (else 404, so its existence does not leak)."""
    round_ = selectors.round_list(user=request.user).filter(pk=round_id).first()
    if round_ is None:
        raise Http404("No such round.")
    return round_


def watched_round(request, round_id: int) -> Round:
    round_ = visible_round(request, round_id)
    if not access.may_watch_round(request.user, round_):
        raise PermissionDenied("Only the round's coordinators and researchers see its statistics.")
    return round_


def managed_round(request, round_id: int) -> Round:
    round_ = visible_round(request, round_id)
    if not access.may_manage_round(request.user, round_):
        raise PermissionDenied("Only the round's coordinators may change it.")
    return round_


def run_service(request, action, *, success: str, redirect_to: str):
    """Run a state-changing service; refusals become a message on the page, never a 500."""
    try:
        action()
    except (RoundStateError, InvalidInput, QueueUnavailable) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return redirect(redirect_to)
