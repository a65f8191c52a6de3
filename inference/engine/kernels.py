"""Sparse top-k kernels: latent selection, and encode/decode whose gradients touch only the selected latents.

A top-k SAE step with dense tensors costs four [n, d_in] x [d_in, d_sae] matmuls (encode, decode,
and the two backward products), although only k of the d_sae latents of each token are non-zero.
Here the codes stay in CSR form (`SparseCodes`): the decoder gathers k rows of `W_dec` per token
(`embedding_bag`), and the backward pass computes the decoder and encoder gradients as sparse x
dense products (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", section 5.3).
Only the encoder's forward matmul stays dense, because choosing the top k needs every
pre-activation. `dense_decode` and `SparseCodes.to_dense` are the plain reference the tests and
`bench/sae_train.py` compare against. The sparse products use torch's CSR kernels (CPU, cuSPARSE);
a backend without them falls back to chunked gathers. No Triton kernel: torch.topk(sorted=False)
is the selection on every device.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# torch warns once per process that CSR tensors are "beta" (the two CSR products used here are
# stable since 2.0); spend that one warning here, silenced, rather than in a training step.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(
        torch.zeros(2, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0), size=(1, 1)
    )


@dataclass(frozen=True, eq=False)
class SparseCodes:
    """Latent activations of n tokens in CSR layout.

    crow [n + 1] int64: row i's entries are `col[crow[i]:crow[i + 1]]`, sorted ascending.
    col [nnz] int64: latent index of each entry. values [nnz]: its activation. k: the number of
    entries of every row when that is fixed (top-k), None when rows differ (BatchTopK, thresholds).
    """

    crow: torch.Tensor
    col: torch.Tensor
    values: torch.Tensor
    d_sae: int
    k: int | None = None

    @property
    def n_rows(self) -> int:
        return self.crow.shape[0] - 1

    def with_values(self, values: torch.Tensor) -> SparseCodes:
        return SparseCodes(self.crow, self.col, values, self.d_sae, self.k)

    def row_index(self) -> torch.Tensor:
        """[nnz] the token (row) of each entry."""
        return _rows(self.crow, self.col.shape[0])

    def to_dense(self) -> torch.Tensor:
        """[n, d_sae] the same codes as a dense matrix (differentiable in `values`)."""
        dense = self.values.new_zeros(self.n_rows, self.d_sae)
        if self.k is not None:
            return dense.scatter(1, self.col.view(-1, self.k), self.values.view(-1, self.k))
        return dense.index_put((self.row_index(), self.col), self.values)

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """[nnz] the entries of dense [n, d_sae] at this pattern (differentiable, dense backward)."""
        if self.k is not None:
            return dense.gather(1, self.col.view(-1, self.k)).reshape(-1)
        return dense.reshape(-1)[self.row_index() * self.d_sae + self.col]

    def active_latents(self) -> torch.Tensor:
        """[d_sae] bool: latents with a positive activation in at least one row."""
        fired = torch.zeros(self.d_sae, dtype=torch.bool, device=self.col.device)
        return fired.index_fill_(0, self.col[self.values > 0], True)

    def l0(self) -> torch.Tensor:
        """Mean number of positive activations per row (a 0-d tensor, no host sync)."""
        return (self.values > 0).sum() / max(self.n_rows, 1)


def topk_codes(pre: torch.Tensor, k: int) -> SparseCodes:
    """Pattern of the k largest entries of each row of pre [n, d_sae]; values are pre's there."""
    n, d_sae = pre.shape
    # sorted=False skips ordering the k winners by value; CSR wants them ordered by latent instead,
    # and sorting k integers per row is far cheaper than sorting k floats inside topk.
    col = torch.topk(pre, k, dim=1, sorted=False).indices.sort(dim=1).values
    crow = torch.arange(0, n * k + 1, k, device=pre.device)
    return SparseCodes(crow, col.reshape(-1), pre.gather(1, col).reshape(-1), d_sae, k)


def batch_topk_codes(acts: torch.Tensor, k_total: int) -> SparseCodes:
    """Pattern of the k_total largest entries of the whole batch acts [n, d_sae] (BatchTopK)."""
    n, d_sae = acts.shape
    flat = _batch_topk_indices(acts.reshape(-1), min(k_total, acts.numel())).sort().values
    return _from_flat(flat, acts, n, d_sae)


_SAMPLE_SIZE = 1 << 16
_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: a fixed, well-spread sample of positions


def _batch_topk_indices(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest entries of flat, exactly, usually without a full top-k.

    torch.topk over n*d_sae values runs one long selection (single-threaded on CPU). A threshold
    from a fixed sample's quantile keeps about 2k candidates in one vectorised comparison; if
    fewer than k pass, the full top-k runs instead, so the result never depends on the sample.
    (~6x faster at B=1024, d_sae=6144, k=32 on CPU.)
    """
    size = flat.numel()
    if k * 8 > size:
        return torch.topk(flat, k, sorted=False).indices
    m = min(size, _SAMPLE_SIZE)
    sample = flat[(torch.arange(m, device=flat.device) * _HASH_MULTIPLIER) % size].float()
    threshold = sample.kthvalue(max(1, int(m * (1 - 2 * k / size)))).values
    candidates = (flat > threshold).nonzero().squeeze(1)
    if candidates.numel() < k:
        return torch.topk(flat, k, sorted=False).indices
    return candidates[torch.topk(flat[candidates], k, sorted=False).indices]


def threshold_codes(acts: torch.Tensor, keep: torch.Tensor) -> SparseCodes:
    """Pattern of the entries of acts [n, d_sae] where keep [n, d_sae] (bool) is true."""
    n, d_sae = acts.shape
    return _from_flat(keep.reshape(-1).nonzero().squeeze(1), acts, n, d_sae)


def _from_flat(flat: torch.Tensor, acts: torch.Tensor, n: int, d_sae: int) -> SparseCodes:
    rows = flat // d_sae
    crow = torch.zeros(n + 1, dtype=torch.long, device=acts.device)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    return SparseCodes(crow, flat - rows * d_sae, acts.reshape(-1)[flat], d_sae)


def preactivations(x: torch.Tensor, b_dec: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor) -> torch.Tensor:
    """[n, d_sae] = (x - b_dec) @ W_enc + b_enc, one fused addmm."""
    return torch.addmm(b_enc, x - b_dec, W_enc)


class _GatherEncode(torch.autograd.Function):
    """Pre-activations at the selected (row, latent) pairs only, with sparse backward.

    Forward reads them from an already computed (no-grad) `pre`; backward sends gradient to the
    selected columns of W_enc and nowhere else: grad W_enc = (x - b_dec)^T G, G being the [n, d_sae]
    sparse matrix of incoming gradients, computed as (G^T (x - b_dec))^T.
    """

    @staticmethod
    def forward(ctx, x, b_dec, W_enc, b_enc, pre, codes):  # noqa: N803 (project tensor names)
        ctx.save_for_backward(x, b_dec, W_enc, codes.crow, codes.col)
        ctx.d_sae = codes.d_sae
        return codes.gather(pre)

    @staticmethod
    def backward(ctx, grad_values):
        x, b_dec, W_enc, crow, col = ctx.saved_tensors
        grad = grad_values.to(W_enc.dtype)
        grad_x = grad_b_dec = grad_W_enc = grad_b_enc = None
        need_x, need_b_dec, need_W_enc, need_b_enc = ctx.needs_input_grad[:4]
        if need_b_enc or need_b_dec:
            column_sums = torch.zeros(ctx.d_sae, dtype=grad.dtype, device=grad.device).index_add_(0, col, grad)
            grad_b_enc = column_sums if need_b_enc else None
            # d pre / d b_dec = -W_enc^T, so the bias gradient is one matvec with the column sums.
            grad_b_dec = -(W_enc @ column_sums).to(b_dec.dtype) if need_b_dec else None
        if need_x:
            grad_x = F.embedding_bag(
                col, W_enc.t().contiguous(), offsets=crow[:-1], per_sample_weights=grad, mode="sum"
            ).to(x.dtype)
        if need_W_enc:
            centred = (x - b_dec).to(W_enc.dtype)
            grad_W_enc = transposed_product(crow, col, grad, centred, ctx.d_sae).t()
        return grad_x, grad_b_dec, grad_W_enc, grad_b_enc, None, None


class _SparseDecode(torch.autograd.Function):
    """codes @ W_dec from CSR codes; backward: grad W_dec = codes^T g (sparse x dense), grad values =
    <g_row, W_dec[latent]> computed only at the stored entries (SDDMM)."""

    @staticmethod
    def forward(ctx, values, W_dec, crow, col):  # noqa: N803
        ctx.save_for_backward(values, W_dec, crow, col)
        weights = values.to(W_dec.dtype)
        return F.embedding_bag(col, W_dec, offsets=crow[:-1], per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad_out):
        values, W_dec, crow, col = ctx.saved_tensors
        grad_out = grad_out.to(W_dec.dtype).contiguous()
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_values = sampled_row_products(crow, col, grad_out, W_dec).to(values.dtype)
        if ctx.needs_input_grad[1]:
            grad_W_dec = transposed_product(crow, col, values.to(W_dec.dtype), grad_out, W_dec.shape[0])
        return grad_values, grad_W_dec, None, None


# torch's sparse kernels cover CPU and CUDA; where one raises (another backend, an old CUDA), the
# pair (device type, operation) is remembered and a chunked gather / index_add path takes over.
_UNSUPPORTED: set[tuple[str, str]] = set()
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch.OutOfMemoryError is 2.5+
_FALLBACK_CHUNK_ELEMENTS = 1 << 22


def _sparse_or_fallback(name: str, device: torch.device, sparse, fallback) -> torch.Tensor:
    key = (device.type, name)
    if key not in _UNSUPPORTED:
        try:
            return sparse()
        except _OUT_OF_MEMORY:
            raise
        except (RuntimeError, NotImplementedError):
            _UNSUPPORTED.add(key)
    return fallback()


def _rows(crow: torch.Tensor, nnz: int) -> torch.Tensor:
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(torch.arange(crow.shape[0] - 1, device=crow.device), counts, output_size=nnz)


def transposed_product(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, dense: torch.Tensor, n_cols: int
) -> torch.Tensor:
    """[n_cols, D] = S^T @ dense for the CSR matrix S [n, n_cols] = (crow, col, values), dense [n, D].

    Builds S^T in CSR form (a stable sort of the column indices) so that the product is an
    ordinary CSR x dense SpMM, which CPU and cuSPARSE run without atomics.
    """
    rows = _rows(crow, col.shape[0])

    def sparse() -> torch.Tensor:
        order = torch.argsort(col, stable=True)
        crow_t = torch.zeros(n_cols + 1, dtype=torch.long, device=col.device)
        crow_t[1:] = torch.bincount(col, minlength=n_cols).cumsum(0)
        transposed = torch.sparse_csr_tensor(
            crow_t, rows[order], values[order], size=(n_cols, dense.shape[0]), check_invariants=False
        )
        return transposed @ dense

    def fallback() -> torch.Tensor:
        out = dense.new_zeros(n_cols, dense.shape[1])
        step = max(1, _FALLBACK_CHUNK_ELEMENTS // max(dense.shape[1], 1))
        for start in range(0, col.shape[0], step):
            part = slice(start, start + step)
            out.index_add_(0, col[part], values[part, None] * dense[rows[part]])
        return out

    return _sparse_or_fallback("transposed_product", dense.device, sparse, fallback)


def sampled_row_products(
    crow: torch.Tensor, col: torch.Tensor, left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """[nnz] <left[row], right[col]> at each stored entry; left [n, D], right [n_cols, D] (SDDMM)."""

    def sparse() -> torch.Tensor:
        pattern = torch.sparse_csr_tensor(
            crow,
            col,
            torch.ones_like(col, dtype=left.dtype),
            size=(left.shape[0], right.shape[0]),
            check_invariants=False,
        )
        return torch.sparse.sampled_addmm(pattern, left, right.t(), beta=0.0).values()

    def fallback() -> torch.Tensor:
        rows = _rows(crow, col.shape[0])
        step = max(1, _FALLBACK_CHUNK_ELEMENTS // max(left.shape[1], 1))
        return torch.cat(
            [
                (left[rows[part]] * right[col[part]]).sum(dim=1)
                for part in (slice(start, start + step) for start in range(0, col.shape[0], step))
            ]
        )

    return _sparse_or_fallback("sampled_row_products", left.device, sparse, fallback)


def gather_encode(
    x: torch.Tensor,
    b_dec: torch.Tensor,
    W_enc: torch.Tensor,
    b_enc: torch.Tensor,
    pre: torch.Tensor,
    codes: SparseCodes,
) -> torch.Tensor:
    """[nnz] differentiable pre-activations at `codes`' pattern; `pre` is the detached [n, d_sae]."""
    return _GatherEncode.apply(x, b_dec, W_enc, b_enc, pre.detach(), codes)


def sparse_decode(codes: SparseCodes, W_dec: torch.Tensor) -> torch.Tensor:
    """[n, d_in] = codes @ W_dec without materialising the dense codes (no decoder bias)."""
    return _SparseDecode.apply(codes.values, W_dec, codes.crow, codes.col)


def dense_decode(codes: SparseCodes, W_dec: torch.Tensor) -> torch.Tensor:
    """Reference for `sparse_decode`: scatter into zeros, then an ordinary matmul."""
    return codes.to_dense().to(W_dec.dtype) @ W_dec
