"""Pseudonymised exports of labels (long format) and per-latent consensus, streamed in constant memory."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import FileResponse, StreamingHttpResponse

from accounts.audit import audit_record
from accounts.csv_safety import csv_cell
from accounts.models import Institution, Role
from accounts.permissions import role_of, saes_visible_to
from features.models import Latent

from .models import PLATFORM_CONSENSUS_METHOD, Adjudication, Concept, Consensus, Label, Round
from .selectors.rounds import round_list
from .selectors.statistics import StatisticsState, rounds_statistics_state

# docs/interfaces.md: the `agreement` and `consensus` commands read this file as it is.
LABEL_COLUMNS = (
    "latent_id",
    "round_id",
    "round_kind",
    "rater",
    "institution",
    "role",
    "concept_code",
    "concept_name",
    "free_text",
    "confidence",
    "rationale",
    "is_repeat",
    "submitted_at",
    "rubric_version",
)
LATENT_COLUMNS = (
    "latent_id",
    "sae_id",
    "latent_index",
    "scope",
    "method",
    "status",
    "consensus",
    "consensus_name",
    "posterior",
    "entropy",
    "n_labels",
    "n_raters",
    "n_rounds",
    "agreement",
    "detection_accuracy",
    "adjudicated_concept",
    "adjudication_rationale",
    "adjudicated_at",
    "protected_attributes",
)
FORMATS = ("csv", "jsonl", "parquet")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
EXPORTED_ROUND_STATUSES = (Round.Status.CLOSED, Round.Status.REVEALED)
CHUNK_ROWS = 2000


@dataclass(frozen=True)
class ExportScope:
    """Which labels: any combination of one round, one SAE and one institution (the raters').

    Rounds labelled by simulated raters (the demo's) are left out unless `include_simulated`."""

    round_id: int | None = None
    sae_id: int | None = None
    institution: Institution | None = None
    include_simulated: bool = False

    @property
    def empty(self) -> bool:
        return self.round_id is None and self.sae_id is None and self.institution is None

    def describe(self) -> str:
        parts = [
            f"round-{self.round_id}" if self.round_id else "",
            f"sae-{self.sae_id}" if self.sae_id else "",
            f"institution-{self.institution.code}" if self.institution else "",
        ]
        return ("_".join(part for part in parts if part) or "all") + (
            "_with-simulated" if self.include_simulated else ""
        )


def exportable_labels(*, user, scope: ExportScope) -> QuerySet[Label]:
    """Labels of closed rounds (frozen, so an export is reproducible) that the user may read, in scope.
    Coordinators read the rounds they watch; everyone only labels on SAEs they may see. `user` None is
    the operator at the command line, who reads everything."""
    labels = Label.objects.filter(assignment__round__status__in=EXPORTED_ROUND_STATUSES).exclude(
        assignment__round__kind=Round.Kind.DETECTION
    )
    if not scope.include_simulated:
        labels = labels.exclude(assignment__round__simulated=True)
    if user is not None:
        labels = saes_visible_to(user, labels, prefix="assignment__round__sae__")
        if role_of(user) == Role.COORDINATOR:
            labels = labels.filter(assignment__round__in=round_list(user=user).values("pk"))
    if scope.round_id is not None:
        labels = labels.filter(assignment__round_id=scope.round_id)
    if scope.sae_id is not None:
        labels = labels.filter(assignment__round__sae_id=scope.sae_id)
    if scope.institution is not None:
        labels = labels.filter(assignment__rater__profile__institution=scope.institution)
    return labels


def latent_export_statistics(*, user, scope: ExportScope) -> StatisticsState:
    """Whether the per-latent file's consensus and agreement are ready: the round in scope, or, for an SAE
    or institution scope (SAE-wide consensus), every closed round on the SAEs whose labels are exported.
    The page and the API refuse the file while this is pending or failed (docs/round-statistics.md)."""
    if scope.round_id is not None:
        rounds = Round.objects.filter(pk=scope.round_id)
    else:
        saes = exportable_labels(user=user, scope=scope).values("assignment__round__sae_id")
        rounds = Round.objects.filter(sae_id__in=saes)
        if not scope.include_simulated:
            rounds = rounds.exclude(simulated=True)
    return rounds_statistics_state(rounds=rounds, user=user)


def label_rows(labels: QuerySet[Label]) -> Iterator[dict]:
    """One dict per label in LABEL_COLUMNS order, read in chunks: memory stays flat however many rows."""
    fields = (
        "assignment__latent_id",
        "assignment__round_id",
        "assignment__round__kind",
        "assignment__rater__profile__pseudonym",
        "assignment__rater__profile__institution__code",
        "assignment__rater__profile__role",
        "concept__code",
        "concept__name",
        "free_text",
        "confidence",
        "rationale",
        "assignment__is_repeat",
        "submitted_at",
        "concept__rubric_version__rubric__name",
        "concept__rubric_version__version",
    )
    for row in labels.order_by("pk").values_list(*fields).iterator(chunk_size=CHUNK_ROWS):
        yield {
            "latent_id": row[0],
            "round_id": row[1],
            "round_kind": row[2],
            "rater": row[3],
            "institution": row[4],
            "role": row[5],
            "concept_code": row[6],
            "concept_name": row[7],
            "free_text": row[8],
            "confidence": row[9],
            "rationale": row[10],
            "is_repeat": row[11],
            "submitted_at": row[12].isoformat(),
            "rubric_version": f"{row[13]} v{row[14]}",
        }


def latent_rows(*, user, scope: ExportScope) -> Iterator[dict]:
    """One dict per latent that has labels in scope: the soft label (posterior), MAP consensus, entropy,
    label count, status, and the latest adjudication, if any. Round scope uses the round's consensus,
    otherwise the SAE-wide one; either is the platform method's (the soft label is its posterior).

    Without `include_simulated`, a latent that simulated raters labelled is left out of the SAE-wide
    export, since its SAE-wide posterior pools their labels."""
    labels = exportable_labels(user=user, scope=scope)
    names = dict(Concept.objects.filter(labels__in=labels).values_list("code", "name").distinct())
    consensus = Consensus.objects.platform().filter(latent_id=OuterRef("pk"))
    if scope.round_id is not None:
        consensus = consensus.filter(round_id=scope.round_id)
    else:
        consensus = consensus.filter(sae_id=OuterRef("sae_id"))
    adjudication = Adjudication.objects.filter(latent_id=OuterRef("pk")).order_by("-decided_at")
    annotated = Latent.objects.annotate(
        consensus_concept=Subquery(consensus.values("map_concept")[:1]),
        consensus_posterior=Subquery(consensus.values("posterior")[:1]),
        consensus_entropy=Subquery(consensus.values("entropy")[:1]),
        consensus_n_labels=Subquery(consensus.values("n_labels")[:1]),
        consensus_n_raters=Subquery(consensus.values("n_raters")[:1]),
        consensus_n_rounds=Subquery(consensus.values("n_rounds")[:1]),
        consensus_agreement=Subquery(consensus.values("agreement")[:1]),
        consensus_detection=Subquery(consensus.values("detection_accuracy")[:1]),
        adjudicated_concept=Subquery(adjudication.values("concept__code")[:1]),
        adjudication_rationale=Subquery(adjudication.values("rationale")[:1]),
        adjudicated_at=Subquery(adjudication.values("decided_at")[:1]),
    ).order_by("sae_id", "index")
    # Ids first, then plain queries per chunk of ids: a server-side cursor over the correlated
    # subqueries made PostgreSQL plan for the first rows (cursor_tuple_fraction) and ran 20× slower.
    latents = Latent.objects.filter(pk__in=labels.values("assignment__latent_id"))
    if scope.round_id is None and not scope.include_simulated:
        latents = latents.exclude(
            pk__in=Label.objects.filter(
                assignment__round__simulated=True,
                assignment__round__status__in=EXPORTED_ROUND_STATUSES,
            ).values("assignment__latent_id")
        )
    ordered_ids = list(latents.order_by("sae_id", "index").values_list("pk", flat=True))
    for start in range(0, len(ordered_ids), CHUNK_ROWS):
        yield from _latent_chunk(
            annotated.filter(pk__in=ordered_ids[start : start + CHUNK_ROWS]), scope=scope, names=names
        )


def _latent_chunk(latents, *, scope: ExportScope, names: dict[str, str]) -> Iterator[dict]:
    for latent in latents:
        posterior = latent.consensus_posterior
        if isinstance(posterior, str):  # JSON read through a subquery may arrive undecoded
            posterior = json.loads(posterior)
        yield {
            "latent_id": latent.pk,
            "sae_id": latent.sae_id,
            "latent_index": latent.index,
            "scope": f"round:{scope.round_id}" if scope.round_id else f"sae:{latent.sae_id}",
            "method": PLATFORM_CONSENSUS_METHOD,
            "status": latent.status,
            "consensus": latent.consensus_concept,
            "consensus_name": names.get(latent.consensus_concept, "") if latent.consensus_concept else "",
            "posterior": json.dumps(posterior, sort_keys=True) if posterior is not None else None,
            "entropy": latent.consensus_entropy,
            "n_labels": latent.consensus_n_labels,
            "n_raters": latent.consensus_n_raters,
            "n_rounds": latent.consensus_n_rounds,
            "agreement": latent.consensus_agreement,
            "detection_accuracy": latent.consensus_detection,
            "adjudicated_concept": latent.adjudicated_concept,
            "adjudication_rationale": latent.adjudication_rationale,
            "adjudicated_at": latent.adjudicated_at.isoformat() if latent.adjudicated_at else None,
            # issue 12: associations with protected attributes (JSON), whatever the label
            "protected_attributes": json.dumps(latent.protected_associations)
            if latent.protected_associations
            else None,
        }


class _Line:
    """A file-like object whose write returns the line: csv.writer then formats one row at a time."""

    def write(self, value: str) -> str:
        return value


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else csv_cell(value)  # a would-be formula is written as text


def csv_chunks(*, columns: Iterable[str], rows: Iterable[dict], lines_per_chunk: int = 500) -> Iterator[str]:
    """CSV text in chunks of a few hundred lines (one per row would make streaming needlessly chatty)."""
    columns = tuple(columns)
    writer = csv.writer(_Line())
    buffer = [writer.writerow(columns)]
    for row in rows:
        buffer.append(writer.writerow([_csv_value(row[column]) for column in columns]))
        if len(buffer) >= lines_per_chunk:
            yield "".join(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer)


def jsonl_chunks(*, columns: Iterable[str], rows: Iterable[dict], lines_per_chunk: int = 500) -> Iterator[str]:
    columns = tuple(columns)
    buffer = []
    for row in rows:
        record = {column: row[column] for column in columns}
        if isinstance(record.get("posterior"), str):
            record["posterior"] = json.loads(record["posterior"])
        buffer.append(json.dumps(record, ensure_ascii=False) + "\n")
        if len(buffer) >= lines_per_chunk:
            yield "".join(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer)


def _parquet_schema(columns: tuple[str, ...]):
    import pyarrow as pa

    types = {
        "latent_id": pa.int64(),
        "round_id": pa.int64(),
        "sae_id": pa.int64(),
        "latent_index": pa.int64(),
        "confidence": pa.int16(),
        "is_repeat": pa.bool_(),
        "entropy": pa.float64(),
        "n_labels": pa.int64(),
        "n_raters": pa.int64(),
        "n_rounds": pa.int64(),
        "agreement": pa.float64(),
        "detection_accuracy": pa.float64(),
    }
    return pa.schema([(column, types.get(column, pa.string())) for column in columns])


def parquet_write(*, columns: Iterable[str], rows: Iterable[dict], path: Path, row_group_rows: int = 20_000) -> int:
    """Write Parquet one row group at a time, so memory holds one group, never the whole table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = tuple(columns)
    schema = _parquet_schema(columns)
    n = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        batch: dict[str, list] = {column: [] for column in columns}
        for row in rows:
            for column in columns:
                batch[column].append(row[column])
            n += 1
            if len(batch[columns[0]]) >= row_group_rows:
                writer.write_table(pa.Table.from_pydict(batch, schema=schema))
                batch = {column: [] for column in columns}
        if batch[columns[0]] or n == 0:
            writer.write_table(pa.Table.from_pydict(batch, schema=schema))
    return n


def _audit_export(*, user, kind: str, fmt: str, scope: ExportScope) -> None:
    audit_record(
        actor=user,
        action=f"export.{kind}",
        payload={
            "format": fmt,
            "round": scope.round_id,
            "sae": scope.sae_id,
            "institution": scope.institution.code if scope.institution else None,
        },
    )


def export_write(*, kind: str, fmt: str, user, scope: ExportScope, path: Path, audit: bool = True) -> int:
    """Write the labels file (kind "labels") or the per-latent file (kind "latents") to `path`; returns rows."""
    if audit:
        _audit_export(user=user, kind=kind, fmt=fmt, scope=scope)
    columns = LABEL_COLUMNS if kind == "labels" else LATENT_COLUMNS
    rows = (
        label_rows(exportable_labels(user=user, scope=scope))
        if kind == "labels"
        else latent_rows(user=user, scope=scope)
    )
    if fmt == "parquet":
        return parquet_write(columns=columns, rows=rows, path=path)
    counted = _Counted(rows)
    chunks = (csv_chunks if fmt == "csv" else jsonl_chunks)(columns=columns, rows=counted)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for chunk in chunks:
            handle.write(chunk)
    return counted.n


class _Counted:
    def __init__(self, rows: Iterable[dict]) -> None:
        self.rows, self.n = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.n += 1
            yield row


def export_response(*, user, scope: ExportScope, kind: str, fmt: str):
    """csv and jsonl stream straight from the database cursor; parquet is written row group by row group
    to a temporary file, then streamed from disk; memory stays flat either way."""
    if scope.empty:
        raise ValueError("an export needs a scope")
    filename = f"concord_{kind}_{scope.describe()}.{fmt}"
    _audit_export(user=user, kind=kind, fmt=fmt, scope=scope)
    if fmt == "parquet":
        handle, path = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
        export_write(kind=kind, fmt=fmt, user=user, scope=scope, path=Path(path), audit=False)
        stream = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
        os.unlink(path)  # the open handle keeps the data until the response is sent
        return FileResponse(stream, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt])
    columns = LABEL_COLUMNS if kind == "labels" else LATENT_COLUMNS
    rows = (
        label_rows(exportable_labels(user=user, scope=scope))
        if kind == "labels"
        else latent_rows(user=user, scope=scope)
    )
    chunks = (csv_chunks if fmt == "csv" else jsonl_chunks)(columns=columns, rows=rows)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
