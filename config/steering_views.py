"""The steering page and API endpoint: validate, call `config.steering.steering_run`, show the result."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.steering import RESEARCH_ONLY, SteeringError, can_steer, steerable_saes, steering_run


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


@login_required
def steering_page(request):
    if not can_steer(request.user):
        raise PermissionDenied("Steering is for researchers and seniors.")
    form = SteeringForm(request.POST or None, user=request.user)
    result, error = None, None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = steering_run(
                sae=data["sae"],
                by=request.user,
                prompt=data["prompt"],
                latent_index=data["latent"],
                concept_code=data["concept"] or None,
                clamp=data["clamp"],
                scale=data["scale"],
                max_new_tokens=data["max_new_tokens"],
                seed=data["seed"],
            )
        except SteeringError as failure:
            error = str(failure)
    rows = list(zip(result["kl_tokens"], result["kl"], strict=False)) if result else []
    return render(
        request,
        "steering/steer.html",
        {"form": form, "result": result, "error": error, "notice": RESEARCH_ONLY, "kl_rows": rows},
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


class SteeringRunApi(APIView):
    """Baseline and steered continuations side by side with per-position KL. Research tool, not for
    patient care: researchers and seniors only; every run is audited."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=SteeringInputSerializer, responses={200: dict})
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
            result = steering_run(
                sae=sae,
                by=request.user,
                prompt=data["prompt"],
                latent_index=data.get("latent"),
                concept_code=data.get("concept") or None,
                clamp=data.get("clamp"),
                scale=data.get("scale"),
                max_new_tokens=data["max_new_tokens"],
                seed=data.get("seed"),
            )
        except SteeringError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(result)
