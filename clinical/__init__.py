"""Clinical use of labelled latents (issue 12): explaining a note, drift audits, protected attributes."""
