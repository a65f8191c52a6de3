"""Steering a causal host through an SAE: clamp or scale latents at a hook point, generate baseline
and steered continuations side by side, and measure how far the next-token distributions move.

The intervention keeps the SAE's error term: at every steered position the hook adds
decode(z') - decode(z) to the host's own activation h, which is h' = decode(z') + (h - decode(z)),
the reconstruction of the edited codes plus what the SAE fails to reconstruct. Written as a
difference, an intervention that leaves z unchanged adds exactly zero, so the steered run
reproduces the baseline bit for bit (Templeton et al. 2024 clamp features the same way).
Special tokens (BOS) are never edited: capture never showed them to the SAE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from inference.engine.hooks import forward_hooks, output_tensor, replace_output, resolve_hook_module
from inference.engine.host_models import HostModelHandle

Encode = Callable[[torch.Tensor], torch.Tensor]
Decode = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Intervention:
    """What to do to which latents. latents: index -> weight in [0, 1] (1 for one chosen latent; a
    concept's latents carry the posterior probability of their consensus label). Exactly one of
    clamp and scale. With weight w, clamp sets z_i to w V + (1 - w) z_i and scale multiplies z_i by
    1 + w (S - 1): a latent the raters were sure of gets the full intervention, a doubtful one less."""

    latents: Mapping[int, float]
    clamp: float | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if not self.latents:
            raise ValueError("an intervention needs at least one latent")
        if (self.clamp is None) == (self.scale is None):
            raise ValueError("give exactly one of clamp and scale")
        for value in (self.clamp, self.scale):
            if value is not None and not math.isfinite(value):
                raise ValueError("clamp and scale must be finite numbers")
        for index, weight in self.latents.items():
            if not isinstance(index, int) or index < 0:
                raise ValueError(f"latent indices must be non-negative integers, got {index!r}")
            if not 0 <= weight <= 1:
                raise ValueError(f"latent weights must be in [0, 1], got {weight!r} for latent {index}")

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, d_sae] -> the edited codes (a new tensor; z is left alone)."""
        edited = z.clone()
        indices = torch.tensor(list(self.latents), dtype=torch.long, device=z.device)
        weights = torch.tensor(list(self.latents.values()), dtype=z.dtype, device=z.device)
        if bool((indices >= z.shape[1]).any()):
            raise ValueError(f"latent index out of range for an SAE with {z.shape[1]} latents")
        current = z[:, indices]
        if self.clamp is not None:
            edited[:, indices] = weights * self.clamp + (1 - weights) * current
        else:
            edited[:, indices] = current * (1 + weights * (self.scale - 1))
        return edited


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 24
    """Tokens generated after the prompt."""
    seed: int | None = None
    """None: greedy decoding. An integer: sampling at `temperature`, with one generator seeded
    identically for the baseline and the steered run, so they differ only through the intervention."""
    temperature: float = 1.0
    """Softmax temperature when sampling."""
    max_prompt_tokens: int = 256
    """Longer prompts are refused rather than cut."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 256:
            raise ValueError("max_new_tokens must be between 1 and 256")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError("temperature must be a positive number")


@dataclass
class Continuation:
    token_ids: list[int]
    tokens: list[str]
    text: str


@dataclass
class SteeringResult:
    """prompt_tokens: the prompt as tokenised. baseline / steered: the two continuations.
    kl: per generated position t, KL(P_baseline || P_steered) in nats of the next-token
    distributions at t, both conditioned on the prompt and the baseline's first t tokens (teacher
    forcing on the baseline, so the two contexts are the same). kl_tokens: the baseline token
    predicted at each of those positions."""

    prompt_tokens: list[str]
    baseline: Continuation
    steered: Continuation
    kl: list[float]
    kl_tokens: list[str]
    edited_positions: int = 0
    notes: list[str] = field(default_factory=list)


def steer(
    *,
    handle: HostModelHandle,
    hook_name: str,
    encode: Encode,
    decode: Decode,
    intervention: Intervention,
    prompt: str,
    generation: GenerationConfig,
) -> SteeringResult:
    """Generate from prompt with and without the intervention at hook_name. encode/decode map raw
    activations [n, d_in] to codes [n, d_sae] and back (e.g. a NormalisedSAE's)."""
    if handle.kind != "causal":
        raise ValueError("steering needs a causal language model; this host is an encoder with no next-token head")
    model, tokenizer = handle.model, handle.tokenizer
    device = handle.device
    encoding = tokenizer([prompt], return_tensors="pt", return_special_tokens_mask=True)
    prompt_ids = encoding["input_ids"][0].tolist()
    if not prompt_ids:
        raise ValueError("the prompt has no tokens")
    if len(prompt_ids) > generation.max_prompt_tokens:
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens; at most {generation.max_prompt_tokens}")
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    module = resolve_hook_module(model, hook_name)
    state = {"active": False, "ids": None, "edited": 0}

    def hook(_module: torch.nn.Module, _inputs: object, output: object) -> object:
        if not state["active"]:
            return None
        h = output_tensor(output)
        keep = (
            ~torch.isin(state["ids"], torch.tensor(sorted(special), dtype=torch.long, device=h.device))
            if special
            else torch.ones_like(state["ids"], dtype=torch.bool)
        )
        if not bool(keep.any()):
            return None
        x = h[keep].float()
        z = encode(x)
        delta = decode(intervention.apply(z)) - decode(z)
        state["edited"] = int(keep.sum())
        steered = h.clone()
        steered[keep] = (x + delta).to(h.dtype) if bool(delta.any()) else h[keep]
        return replace_output(output, steered)

    def logits_for(ids: list[int], steered: bool) -> torch.Tensor:
        """Next-token logits float32 [len(ids), vocab] for the sequence ids (no cache: each call is whole)."""
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        state["active"], state["ids"] = steered, input_ids
        try:
            return (
                model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False).logits[0].float()
            )
        finally:
            state["active"] = False

    def generate(steered: bool) -> list[int]:
        generator = None
        if generation.seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(generation.seed)
        ids = list(prompt_ids)
        eos = tokenizer.eos_token_id
        for _ in range(generation.max_new_tokens):
            logits = logits_for(ids, steered)[-1]
            if generator is None:
                next_id = int(logits.argmax())
            else:
                probabilities = torch.softmax(logits / generation.temperature, dim=-1).cpu()
                next_id = int(torch.multinomial(probabilities, 1, generator=generator))
            ids.append(next_id)
            if eos is not None and next_id == eos:
                break
        return ids[len(prompt_ids) :]

    with torch.inference_mode(), forward_hooks([(module, hook)]):
        baseline_ids = generate(steered=False)
        steered_ids = generate(steered=True)
        # Teacher-forced on the baseline: position t predicts baseline token t from the same context.
        context = prompt_ids + baseline_ids[:-1]
        first = len(prompt_ids) - 1
        base_log = torch.log_softmax(logits_for(context, False)[first:], dim=-1)
        steer_log = torch.log_softmax(logits_for(context, True)[first:], dim=-1)
        kl = (base_log.exp() * (base_log - steer_log)).sum(dim=-1).clamp_min(0.0)

    def continuation(ids: list[int]) -> Continuation:
        return Continuation(
            token_ids=ids,
            tokens=[tokenizer.decode([i]) for i in ids],
            text=tokenizer.decode(ids, skip_special_tokens=True),
        )

    return SteeringResult(
        prompt_tokens=[tokenizer.decode([i]) for i in prompt_ids],
        baseline=continuation(baseline_ids),
        steered=continuation(steered_ids),
        kl=[float(value) for value in kl.tolist()],
        kl_tokens=[tokenizer.decode([i]) for i in baseline_ids],
        edited_positions=state["edited"],
    )
