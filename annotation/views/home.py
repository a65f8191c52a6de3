"""The landing page: what this user's role does next."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import can_adjudicate, can_export, can_label, can_manage_rounds, can_read_labels, role_of

from .. import selectors


@login_required
def home(request):
    user = request.user
    return render(
        request,
        "annotation/home.html",
        {
            "role": role_of(user),
            "rounds": selectors.round_list(user=user)[:20] if not can_label(user) else [],
            "my_rounds": selectors.rater_rounds(user=user) if can_label(user) else [],
            "can_label": can_label(user),
            "can_manage": can_manage_rounds(user),
            "can_adjudicate": can_adjudicate(user),
            "can_read_labels": can_read_labels(user),
            "can_export": can_export(user),
            "n_ambiguous": selectors.adjudication_queue(user=user).count() if can_adjudicate(user) else 0,
        },
    )
