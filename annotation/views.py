"""Server-rendered pages."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import role_of

from . import selectors


@login_required
def home(request):
    return render(request, "annotation/home.html", {
        "role": role_of(request.user),
        "rounds": selectors.round_list(user=request.user)[:20],
    })
