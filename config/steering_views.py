"""The steering pages and API endpoints: validate, queue a `steer` job (`config.steering.steering_launch`),
then show the job's progress and, once a worker has run it, its result. The web process never loads torch."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.redaction import without_server_paths
from config.steering import (
    RESEARCH_ONLY,
    SteeringError,
    SteeringRequest,
    can_steer,
    steerable_saes,
    steering_jobs,
    steering_launch,
)
from inference.models import Job
from inference.services import BrokerUnavailable

QUEUE_DOWN = "The job queue is not answering, so nothing was started; try again shortly."


def _check_target(data: dict) -> dict:
    if (data.get("latent") is None) == (not data.get("concept")):
        raise forms.ValidationError("Give a latent index or a concept code, not both.")
    if (data.get("clamp") is None) == (data.get("scale") is None):
        raise forms.ValidationError("Give a clamp value or a scale factor, not both.")
    return data


class SteeringForm(forms.Form):
    sae = forms.ModelChoiceField(queryset=None, label="SAE")
    latent = forms.IntegerField(required=False, min_value=0, label="Latent index")
    concept = forms.CharField(required=False, max_length=50, label="…or concept code")
    clamp = forms.FloatField(required=False, label="Clamp to")
    scale = forms.FloatField(required=False, label="…or scale by")
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=2000)
    max_new_tokens = forms.IntegerField(initial=24, min_value=1, max_value=128, label="New tokens")
    seed = forms.IntegerField(required=False, label="Seed (empty: greedy)")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sae"].queryset = steerable_saes(user=user)

    def clean(self):
        return _check_target(super().clean())


def _steerer(request) -> None:
    if not can_steer(request.user):
        raise PermissionDenied("Steering is for researchers and seniors.")


@login_required
def steering_page(request):
    """The form; a valid POST queues a steering job and goes to its page."""
    _steerer(request)
    form = SteeringForm(request.POST or None, user=request.user, initial=_initial(request))
    error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = steering_launch(SteeringRequest.from_fields(sae=data["sae"], fields=data), by=request.user, via="web")
        except SteeringError as failure:
            error = str(failure)
        except BrokerUnavailable:
            error = QUEUE_DOWN
        else:
            messages.success(request, f"Steering run queued as job {job.pk}.")
            return redirect("steering-job", job_id=job.pk)
    return render(
        request,
        "steering/steer.html",
        {"form": form, "error": error, "notice": RESEARCH_ONLY, "jobs": steering_jobs(user=request.user)[:20]},
    )


def _initial(request) -> dict:
    """A link from a latent page may name the SAE and the latent (?sae=ID&latent=IDX)."""
    initial = {}
    for key in ("sae", "latent"):
        value = request.GET.get(key, "")
        if value.isdigit():
            initial[key] = int(value)
    return initial


def _visible_job(request, job_id: int) -> Job:
    job = steering_jobs(user=request.user).select_related("created_by").filter(pk=job_id).first()
    if job is None:
        raise Http404("No such steering run.")
    return job


@login_required
def steering_job_page(request, job_id: int):
    """One steering run: progress while a worker runs it, then baseline and steered side by side with
    the per-position KL, or the error of a failed run."""
    _steerer(request)
    job = _visible_job(request, job_id)
    result = job.result if job.status == Job.Status.SUCCEEDED else None
    rows = list(zip(result["kl_tokens"], result["kl"], strict=False)) if result else []
    return render(
        request,
        "steering/job.html",
        {
            "job": job,
            "params": job.parameters,
            "result": result,
            "kl_rows": rows,
            "max_kl": max((kl for _, kl in rows), default=0.0),
            "notice": RESEARCH_ONLY,
            "status_url": reverse("steering-job-api", args=[job.pk]),
        },
    )


class SteeringInputSerializer(serializers.Serializer):
    sae = serializers.IntegerField()
    latent = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    concept = serializers.CharField(required=False, allow_blank=True, max_length=50)
    clamp = serializers.FloatField(required=False, allow_null=True)
    scale = serializers.FloatField(required=False, allow_null=True)
    prompt = serializers.CharField(max_length=2000)
    max_new_tokens = serializers.IntegerField(required=False, default=24, min_value=1, max_value=128)
    seed = serializers.IntegerField(required=False, allow_null=True)

    def validate(self, attrs):
        try:
            return _check_target(attrs)
        except forms.ValidationError as error:
            raise serializers.ValidationError(error.messages) from None


def job_body(job: Job) -> dict:
    """What the API says about a steering job: its state; the result once succeeded, the error once failed."""
    body = {
        "job": job.pk,
        "status": job.status,
        "progress": job.progress,
        "message": without_server_paths(job.message),
        "notice": RESEARCH_ONLY,
    }
    if job.status == Job.Status.SUCCEEDED:
        body["result"] = job.result
    elif job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
        body["error"] = without_server_paths(job.message)
    return body


class SteeringRunApi(APIView):
    """Queue a steering run: baseline and steered continuations side by side with per-position KL,
    computed by a worker. Answers 202 with the job id and the URL to poll. Research tool, not for
    patient care: researchers and seniors only; every run is audited."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=SteeringInputSerializer, responses={202: OpenApiTypes.OBJECT})
    def post(self, request):
        if not can_steer(request.user):
            return Response({"detail": "Steering is for researchers and seniors."}, status=status.HTTP_403_FORBIDDEN)
        form = SteeringInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        sae = steerable_saes(user=request.user).filter(pk=data["sae"]).first()
        if sae is None:
            return Response({"detail": "No such SAE on a causal host."}, status=status.HTTP_404_NOT_FOUND)
        try:
            job = steering_launch(SteeringRequest.from_fields(sae=sae, fields=data), by=request.user, via="API")
        except SteeringError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        except BrokerUnavailable:
            return Response({"detail": QUEUE_DOWN}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        url = reverse("steering-job-api", args=[job.pk])
        return Response(
            {
                **job_body(job),
                "latents": job.parameters["latents"],
                "url": url,
                "page": reverse("steering-job", args=[job.pk]),
            },
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )


class SteeringJobApi(APIView):
    """A steering run's state; its result (baseline, steered, KL per position) once a worker has run it,
    or its error. Visible to whoever may follow the job and still steer with its SAE."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, job_id: int):
        if not can_steer(request.user):
            return Response({"detail": "Steering is for researchers and seniors."}, status=status.HTTP_403_FORBIDDEN)
        job = steering_jobs(user=request.user).filter(pk=job_id).first()
        if job is None:
            return Response({"detail": "No such steering run."}, status=status.HTTP_404_NOT_FOUND)
        return Response(job_body(job))
