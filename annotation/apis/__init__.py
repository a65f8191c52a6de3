"""REST endpoints of annotation: validate, call one service or selector, serialise."""
from .labelling import (
    AssignmentDetailApi,
    AssignmentListApi,
    DetectionItemListApi,
    DetectionResponseSubmitApi,
    LabelListApi,
    LabelSubmitApi,
)
from .review import (
    AdjudicationCreateApi,
    AdjudicationListApi,
    AdjudicationQueueApi,
    LabelExportApi,
    LatentBrowseApi,
    LatentExportApi,
    LatentLabelHistoryApi,
)
from .rounds import (
    AgreementReportListApi,
    CommentCreateApi,
    CommentListApi,
    RaterReliabilityListApi,
    RoundAlphaTrendApi,
    RoundCloseApi,
    RoundConsensusListApi,
    RoundCreateApi,
    RoundDetailApi,
    RoundDistributionApi,
    RoundFollowUpApi,
    RoundListApi,
    RoundOpenApi,
    RoundProgressApi,
    RoundRevealApi,
    RoundStatisticsComputeApi,
    RubricCreateApi,
    RubricVersionCreateApi,
    RubricVersionDetailApi,
    RubricVersionListApi,
)
from .serializers import AssignmentSerializer, RoundSerializer

__all__ = [
    "AdjudicationCreateApi", "AdjudicationListApi", "AdjudicationQueueApi", "AgreementReportListApi",
    "AssignmentDetailApi", "AssignmentListApi", "AssignmentSerializer", "CommentCreateApi", "CommentListApi",
    "DetectionItemListApi", "DetectionResponseSubmitApi", "LabelExportApi", "LabelListApi", "LabelSubmitApi",
    "LatentBrowseApi", "LatentExportApi", "LatentLabelHistoryApi", "RaterReliabilityListApi", "RoundAlphaTrendApi",
    "RoundCloseApi", "RoundConsensusListApi", "RoundCreateApi", "RoundDetailApi", "RoundDistributionApi",
    "RoundFollowUpApi", "RoundListApi", "RoundOpenApi", "RoundProgressApi", "RoundRevealApi", "RoundSerializer",
    "RoundStatisticsComputeApi", "RubricCreateApi", "RubricVersionCreateApi", "RubricVersionDetailApi",
    "RubricVersionListApi",
]
