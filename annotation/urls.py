"""API routes for annotation (under /api/v1/)."""

from django.urls import path

from . import apis

urlpatterns = [
    # rounds: lifecycle
    path("rounds/", apis.RoundListApi.as_view(), name="round-list"),
    path("rounds/create/", apis.RoundCreateApi.as_view(), name="round-create-api"),
    path("rounds/<int:pk>/", apis.RoundDetailApi.as_view(), name="round-detail"),
    path("rounds/<int:pk>/open/", apis.RoundOpenApi.as_view(), name="round-open"),
    path("rounds/<int:pk>/close/", apis.RoundCloseApi.as_view(), name="round-close"),
    path("rounds/<int:pk>/reveal/", apis.RoundRevealApi.as_view(), name="round-reveal"),
    path("rounds/<int:pk>/follow-up/", apis.RoundFollowUpApi.as_view(), name="round-follow-up-api"),
    path("rounds/<int:pk>/statistics/", apis.RoundStatisticsComputeApi.as_view(), name="round-statistics"),
    # rounds: what coordinators and researchers watch
    path("rounds/<int:pk>/progress/", apis.RoundProgressApi.as_view(), name="round-progress"),
    path("rounds/<int:pk>/agreement/", apis.AgreementReportListApi.as_view(), name="round-agreement"),
    path("rounds/<int:pk>/consensus/", apis.RoundConsensusListApi.as_view(), name="round-consensus"),
    path("rounds/<int:pk>/reliability/", apis.RaterReliabilityListApi.as_view(), name="round-reliability"),
    path("rounds/<int:pk>/alpha-trend/", apis.RoundAlphaTrendApi.as_view(), name="round-alpha-trend"),
    # reveal and calibration discussion
    path("rounds/<int:pk>/distribution/", apis.RoundDistributionApi.as_view(), name="round-distribution"),
    path("rounds/<int:pk>/comments/", apis.CommentListApi.as_view(), name="round-comments"),
    path("rounds/<int:pk>/comments/create/", apis.CommentCreateApi.as_view(), name="round-comment-create"),
    # rubrics
    path("rubric-versions/", apis.RubricVersionListApi.as_view(), name="rubric-version-list"),
    path("rubric-versions/<int:pk>/", apis.RubricVersionDetailApi.as_view(), name="rubric-version-detail"),
    path("rubric-versions/<int:pk>/derive/", apis.RubricVersionCreateApi.as_view(), name="rubric-version-create"),
    path("rubrics/create/", apis.RubricCreateApi.as_view(), name="rubric-create-api"),
    # the rater's own items
    path("assignments/", apis.AssignmentListApi.as_view(), name="assignment-list"),
    path("assignments/<int:pk>/", apis.AssignmentDetailApi.as_view(), name="assignment-detail"),
    path("assignments/<int:pk>/label/", apis.LabelSubmitApi.as_view(), name="label-submit"),
    path("assignments/<int:pk>/detection-items/", apis.DetectionItemListApi.as_view(), name="detection-items"),
    path(
        "assignments/<int:pk>/detection-answers/", apis.DetectionResponseSubmitApi.as_view(), name="detection-answers"
    ),
    path("labels/", apis.LabelListApi.as_view(), name="label-list"),
    # seniors and researchers
    path("adjudication-queue/", apis.AdjudicationQueueApi.as_view(), name="adjudication-queue-api"),
    path("adjudications/", apis.AdjudicationListApi.as_view(), name="adjudication-list"),
    path("adjudications/create/", apis.AdjudicationCreateApi.as_view(), name="adjudication-create"),
    path("labelled-latents/", apis.LatentBrowseApi.as_view(), name="labelled-latent-list"),
    path("labelled-latents/<int:pk>/", apis.LatentLabelHistoryApi.as_view(), name="labelled-latent-detail"),
    path("exports/labels/", apis.LabelExportApi.as_view(), name="export-labels"),
    path("exports/latents/", apis.LatentExportApi.as_view(), name="export-latents"),
]
