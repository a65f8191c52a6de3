"""REST endpoints for the catalogue; every list is filtered by what the caller may see."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers

from accounts.models import Role
from accounts.permissions import LABELLERS, role_of, role_permission
from accounts.redaction import without_server_paths

from . import selectors
from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet


class HideFromLabellersMixin:
    """Raters never see anything that would anchor them (corpus tags, tag statistics, status); nor do
    clinicians, for whom a latent's status would tell what a round not yet revealed concluded."""

    hidden_from_labellers: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and role_of(request.user) in LABELLERS | {Role.CLINICIAN}:
            for name in self.hidden_from_labellers:
                data.pop(name, None)
        return data


class CorpusSerializer(serializers.ModelSerializer):
    institution = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = Corpus
        fields = ["id", "name", "description", "licence", "institution", "deidentified", "n_snippets", "created_at"]


class SnippetSerializer(HideFromLabellersMixin, serializers.ModelSerializer):
    hidden_from_labellers = ("concept_tags",)

    class Meta:
        model = Snippet
        fields = ["id", "corpus", "external_id", "text", "metadata", "concept_tags", "position"]


class HostModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = HostModel
        fields = ["id", "name", "source", "revision", "kind", "d_model", "n_layers"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # A model loaded from a local folder: its name, never the server's path (HF ids pass unchanged).
        data["name"], data["source"] = without_server_paths(data["name"]), without_server_paths(data["source"])
        return data


class HookPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = HookPoint
        fields = ["id", "host_model", "name", "layer", "site"]


class ActivationSetSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivationSet
        fields = ["id", "host_model", "hook_point", "corpus", "n_tokens", "dtype", "source_job_id", "created_at"]


class SAESerializer(serializers.ModelSerializer):
    class Meta:
        model = SAE
        fields = [
            "id",
            "name",
            "hook_point",
            "activation_set",
            "architecture",
            "d_in",
            "d_sae",
            "k",
            "l1_coefficient",
            "hyperparameters",
            "metrics",
            "sweep_group",
            "published",
            "source_job_id",
            "created_at",
        ]


class LatentExampleSerializer(serializers.ModelSerializer):
    snippet_external_id = serializers.CharField(source="snippet.external_id", read_only=True)

    class Meta:
        model = LatentExample
        fields = ["id", "snippet", "snippet_external_id", "kind", "rank", "max_activation", "tokens", "activations"]


class LatentSerializer(HideFromLabellersMixin, serializers.ModelSerializer):
    hidden_from_labellers = ("best_tag", "best_tag_r", "tag_entropy", "status")

    class Meta:
        model = Latent
        fields = [
            "id",
            "sae",
            "index",
            "density",
            "max_activation",
            "mean_activation",
            "histogram",
            "best_tag",
            "best_tag_r",
            "tag_entropy",
            "status",
        ]


class LatentDetailSerializer(LatentSerializer):
    examples = serializers.SerializerMethodField()

    class Meta(LatentSerializer.Meta):
        fields = [*LatentSerializer.Meta.fields, "examples"]

    @extend_schema_field(LatentExampleSerializer(many=True))
    def get_examples(self, latent):
        examples = selectors.latent_examples(latent=latent, user=self.context["request"].user)
        return LatentExampleSerializer(examples, many=True).data


class CorpusListApi(generics.ListAPIView):
    serializer_class = CorpusSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.corpus_list(user=self.request.user)


class CorpusDetailApi(generics.RetrieveAPIView):
    serializer_class = CorpusSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.corpus_list(user=self.request.user)


class SnippetListApi(generics.ListAPIView):
    serializer_class = SnippetSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        corpus = self.request.query_params.get("corpus")
        return selectors.snippet_list(
            user=self.request.user, corpus_id=int(corpus) if corpus and corpus.isdigit() else None
        )


class HostModelListApi(generics.ListAPIView):
    serializer_class = HostModelSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.host_model_list(user=self.request.user)


class HookPointListApi(generics.ListAPIView):
    serializer_class = HookPointSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.hook_point_list(user=self.request.user)


class ActivationSetListApi(generics.ListAPIView):
    serializer_class = ActivationSetSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.activation_set_list(user=self.request.user)


class SAEListApi(generics.ListAPIView):
    serializer_class = SAESerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.sae_list(user=self.request.user)


class SAEDetailApi(generics.RetrieveAPIView):
    serializer_class = SAESerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.sae_list(user=self.request.user)


class LatentListApi(generics.ListAPIView):
    serializer_class = LatentSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        sae = self.request.query_params.get("sae")
        return selectors.latent_list(user=self.request.user, sae_id=int(sae) if sae and sae.isdigit() else None)


class LatentDetailApi(generics.RetrieveAPIView):
    serializer_class = LatentDetailSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.latent_list(user=self.request.user)
