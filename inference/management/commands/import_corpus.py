"""import_corpus FILE --name NAME [--scrub-phi]: import a JSONL or CSV corpus as a job."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Institution
from inference.models import Job
from inference.services import job_create

from ._jobs import run_job_from_command


class Command(BaseCommand):
    help = "Import a JSONL or CSV corpus (columns text, external_id, optional metadata and concept_tags)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--scrub-phi", action="store_true", help="replace dates, phones, record numbers, names")
        parser.add_argument("--phi-names", type=Path, help="file with one name per line to scrub")
        parser.add_argument("--institution", help="code of the owning institution (default: shared)")
        parser.add_argument("--enqueue", action="store_true", help="run on a worker instead of here")

    def handle(
        self,
        *args,
        file: Path,
        name: str,
        description: str,
        scrub_phi: bool,
        phi_names: Path | None,
        institution: str | None,
        enqueue: bool,
        **options,
    ):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        if institution and not Institution.objects.filter(code=institution).exists():
            raise CommandError(f"no institution with code '{institution}'")
        names = phi_names.read_text().splitlines() if phi_names else []
        job = job_create(
            kind=Job.Kind.IMPORT_CORPUS,
            enqueue=False,
            parameters={
                "path": str(file.resolve()),
                "name": name,
                "description": description,
                "scrub_phi": scrub_phi,
                "phi_names": names,
                "institution": institution,
            },
        )
        job = run_job_from_command(command=self, job=job, enqueue=enqueue)
        if job.status == Job.Status.SUCCEEDED:
            self.stdout.write(
                self.style.SUCCESS(f"corpus {job.result['corpus_id']} '{name}': {job.result['n_snippets']} snippets")
            )
