"""cache_activations --model M --hook H --corpus C: capture a hook point's activations over a corpus."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from features.models import Corpus
from inference.models import Job
from inference.services import cache_activations_request, host_model_resolve

from ._jobs import run_job_from_command


class Command(BaseCommand):
    help = "Capture activations at a hook point (blocks.{L}.hook_resid_post|hook_mlp_out|hook_attn_out)."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="registered host model name, HF id or local path")
        parser.add_argument("--hook", required=True, help="e.g. blocks.3.hook_resid_post")
        parser.add_argument("--corpus", required=True, help="corpus name or id")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--max-length", type=int, default=128)
        parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
        parser.add_argument("--enqueue", action="store_true", help="run on a worker instead of here")

    def handle(self, *args, model, hook, corpus, batch_size, max_length, dtype, enqueue, **options):
        # Corpus names are unique per institution, not globally: a name two institutions share is ambiguous.
        named = list(Corpus.objects.filter(name=corpus).select_related("institution")[:5])
        if len(named) > 1:
            owners = ", ".join(f"{row.pk} ({row.institution.code if row.institution else 'shared'})" for row in named)
            raise CommandError(f"several corpora are named '{corpus}': pass the id instead, one of {owners}")
        corpus_row = (
            named[0] if named else (Corpus.objects.filter(pk=int(corpus)).first() if corpus.isdigit() else None)
        )
        if corpus_row is None:
            raise CommandError(f"no corpus named or numbered '{corpus}'")
        try:
            host_model = host_model_resolve(model=model)
            job = cache_activations_request(
                host_model=host_model,
                hook_name=hook,
                corpus=corpus_row,
                batch_size=batch_size,
                max_length=max_length,
                dtype=dtype,
                enqueue=False,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        job = run_job_from_command(command=self, job=job, enqueue=enqueue)
        if job.status == Job.Status.SUCCEEDED:
            self.stdout.write(
                self.style.SUCCESS(f"activation set {job.result['activation_set_id']}: {job.result['n_tokens']} tokens")
            )
