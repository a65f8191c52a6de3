"""explain_note --sae ID (--text TEXT | --file FILE) --json: what the model represented in a note, with
each latent's consensus label and uncertainty (an audit of the model, not a clinical finding)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clinical.services import NoteRejected, note_explain
from features.models import SAE


class Command(BaseCommand):
    help = "Explain a note with an SAE: every token's active latents, and the concepts represented."

    def add_arguments(self, parser):
        parser.add_argument("--sae", type=int, required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--text")
        source.add_argument("--file", type=Path)
        parser.add_argument("--json", action="store_true", help="print the JSON object of docs/interfaces.md")
        parser.add_argument(
            "--flow", action="store_true", help="also read the note with the other SAEs of the host model, by layer"
        )

    def handle(self, *args, sae, text, file, json: bool, flow: bool = False, **options):
        sae_row = SAE.objects.select_related("hook_point__host_model").filter(pk=sae).first()
        if sae_row is None:
            raise CommandError(f"no SAE {sae}")
        if file is not None:
            if not file.is_file():
                raise CommandError(f"{file}: no such file")
            text = file.read_text(encoding="utf-8")
        try:
            explanation = note_explain(sae=sae_row, text=text, flow=flow, via="command")
        except NoteRejected as error:
            raise CommandError(str(error)) from None
        if json:
            import json as json_module

            self.stdout.write(json_module.dumps(explanation.to_json()))
            return
        self.stdout.write("Audit of the model, not a clinical finding.")
        if explanation.notice:
            self.stdout.write(explanation.notice)
        if explanation.protected_attributes:
            self.stdout.write(f"Protected attributes represented: {', '.join(explanation.protected_attributes)}.")
        for concept in explanation.concepts:
            self.stdout.write(f"- {concept.summary} [{concept.uncertainty}, score {concept.score:.2f}]")
        if not explanation.concepts:
            self.stdout.write("No labelled latent fired on this note.")
