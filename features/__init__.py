"""Catalogue of what is labelled: host models, corpora, snippets, hook points, activations, SAEs, latents."""
