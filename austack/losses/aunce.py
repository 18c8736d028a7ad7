"""AUNCE, the AU contrastive loss (paper sections III-A to III-C), its public-code variant and the
Table VII ablations, as one vectorised log-space computation.

Shapes: z1, z2 [B, n_au, d] (two augmented views of B images), labels [B, n_au] in {1, 0, -1}.
The pool is the 2B rows of cat(z1, z2); row a's other view is row (a + B) mod 2B. Inside, every
tensor is laid out [n_au, 2B(anchor), 2B(other)], so all AUs and anchors go in one pass.
Where the paper contradicts itself, the defaults follow eqs. (5)-(7) and section IV-D; the
other readings are switches (beta_plus_one, minority_by).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..transfer import host_to_device
from ._registry import register_loss
from .base import AULoss

# Per-variant defaults. `p` is always ordered (highest-similarity, other view, centroid/mean).
VARIANT_DEFAULTS = {
    "paper": dict(p=(0.15, 0.15, 0.7), beta_pos=1.2, beta_neg=0.4, use_weights=True),   # Table VIII, Fig. 5
    "reference": dict(p=(0.2, 0.2, 0.6), beta_pos=1.2, beta_neg=0.8, use_weights=False),  # public code
}
POSITIVES = ("sampled", "max", "view", "centroid")
MINORITY_BY = ("label", "rate")
TYPE_MAX, TYPE_VIEW, TYPE_CENTROID = 0, 1, 2   # per-anchor positive types of the paper variant

# Table VII: BL = highest-similarity positive, no w_i, beta = 1; then + w_i, + PS, + NS.
TABLE_VII = {
    "A": dict(positive="max", use_weights=False, reweight=False),
    "B": dict(positive="max", use_weights=True, reweight=False),
    "C": dict(positive="sampled", use_weights=True, reweight=False),
    "D": dict(positive="max", use_weights=True, reweight=True),
    "E": dict(positive="sampled", use_weights=True, reweight=True),
}


@dataclass(frozen=True)
class _Settings:
    variant: str
    tau: float
    p: tuple[float, float, float]
    beta_pos: float
    beta_neg: float
    positive: str
    reweight: bool
    beta_plus_one: bool
    minority_by: str


def _settings(variant, tau, p, beta_pos, beta_neg, positive, reweight, beta_plus_one,
              minority_by) -> _Settings:
    if variant not in VARIANT_DEFAULTS:
        raise ConfigError(f"unknown AUNCE variant {variant!r}; choose one of {', '.join(VARIANT_DEFAULTS)}")
    defaults = VARIANT_DEFAULTS[variant]
    p = tuple(float(x) for x in (defaults["p"] if p is None else p))
    if len(p) != 3 or min(p) < 0 or abs(sum(p) - 1) > 1e-6:
        raise ConfigError(f"p must be three non-negative probabilities (highest-similarity, other view, "
                          f"centroid) summing to 1, got {p}")
    if not tau > 0:
        raise ConfigError(f"tau must be positive, got {tau}")
    if positive not in POSITIVES:
        raise ConfigError(f"unknown positive {positive!r}; choose one of {', '.join(POSITIVES)}")
    if variant == "reference" and positive != "sampled":
        raise ConfigError("the reference variant always draws its positive branch per AU; "
                          "positive= applies to the paper variant only")
    if minority_by not in MINORITY_BY:
        raise ConfigError(f"unknown minority_by {minority_by!r}; choose one of {', '.join(MINORITY_BY)}")
    beta_pos = float(defaults["beta_pos"] if beta_pos is None else beta_pos)
    beta_neg = float(defaults["beta_neg"] if beta_neg is None else beta_neg)
    if beta_pos <= 0 or beta_neg <= 0:
        raise ConfigError(f"beta_pos and beta_neg must be positive, got {beta_pos} and {beta_neg}")
    return _Settings(variant, float(tau), p, beta_pos, beta_neg, positive, bool(reweight),
                     bool(beta_plus_one), minority_by)


def _check_inputs(z1, z2, labels, weights, rates, s: _Settings) -> None:
    if z1.dim() != 3 or z1.shape != z2.shape:
        raise ConfigError(f"AUNCE expects z1 and z2 of one shape [B, n_au, d], got "
                          f"{tuple(z1.shape)} and {tuple(z2.shape)}")
    if tuple(labels.shape) != tuple(z1.shape[:2]):
        raise ConfigError(f"labels must be [B, n_au] = {tuple(z1.shape[:2])}, got {tuple(labels.shape)}")
    # A value check needs a host sync; do it where it is free (CPU) and keep device steps sync-free.
    if labels.device.type == "cpu" and ((labels < -1) | (labels > 1) | (labels != labels.trunc())).any():
        raise ConfigError(f"labels must be 1, 0 or -1 (unknown), got values {labels.unique().tolist()}")
    n_au = z1.shape[1]
    if weights is not None and weights.numel() != n_au:
        raise ConfigError(f"got {weights.numel()} per-AU weights for {n_au} AUs")
    if s.reweight and s.minority_by == "rate" and (rates is None or rates.numel() != n_au):
        raise ConfigError(f"minority_by='rate' needs the {n_au} training occurrence rates (rates=, or "
                          f"loss.set_rates(...)); got {None if rates is None else rates.numel()}")


def _masked_logsumexp(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logsumexp over the last axis where `mask`; rows with no entry give a finite dummy (flagged
    False in the second output) so no -inf ever reaches a backward pass."""
    has = mask.any(-1)
    x = x.masked_fill(~mask & has[..., None], float("-inf"))
    return torch.logsumexp(x, -1), has


def _masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """max over the last axis where `mask`; a finite dummy for rows with no entry."""
    return x.masked_fill(~mask & mask.any(-1, keepdim=True), float("-inf")).amax(-1)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform draws from `generator` on its own device (so a test can replay them), then moved."""
    where = generator.device if generator is not None else device
    return host_to_device(torch.rand(shape, generator=generator, device=where), device)


def draw_positive_types(n_anchors: int, n_au: int, p, generator=None, device="cpu") -> torch.Tensor:
    """The paper variant's per-anchor positive types [n_anchors, n_au]: one ``torch.rand`` call of
    that shape; u < p1 -> 0 (highest similarity), u < p1 + p2 -> 1 (other view), else 2 (centroid)."""
    u = _uniform((n_anchors, n_au), generator, torch.device(device))
    return (u >= p[0]).long() + (u >= p[0] + p[1]).long()


def _negative_exponent(y: torch.Tensor, s: _Settings, rates: torch.Tensor | None,
                       dtype: torch.dtype) -> torch.Tensor:
    """The exponent of sim(a, j) in the negative term, per [AU, anchor]."""
    if not s.reweight:
        return torch.ones_like(y, dtype=dtype)          # without re-weighting omega_j = 1
    if s.minority_by == "label":
        minority = y == 1                              # the paper's reading: the active label
    else:                                              # the rarer label of each AU by its training rate
        minority_label = (rates <= 0.5).to(y.dtype)
        minority = y == minority_label[:, None]
    # filled on the device from Python numbers: a tensor built from them would be a host copy
    beta = torch.full(y.shape, s.beta_neg, dtype=dtype, device=y.device).masked_fill_(minority, s.beta_pos)
    return beta + 1 if s.beta_plus_one else beta


def _paper_positive(cos, same, own, log_view, s: _Settings, generator) -> torch.Tensor:
    """log pos per [AU, anchor]: eq. 8 (max), 9 (other view) or 10 (centroid), by type."""
    if s.positive == "view":
        return log_view
    pos = same & ~own                                  # P(a): same known label, not a, not a'
    has_pos = pos.any(-1)
    log_max = _masked_max(cos, pos) / s.tau
    # z_a . c with c the plain mean of P(a)'s embeddings, i.e. the mean of the dot products
    log_centroid = (cos * pos).sum(-1) / pos.sum(-1).clamp(min=1) / s.tau
    if s.positive == "max":
        chosen = log_max
    elif s.positive == "centroid":
        chosen = log_centroid
    else:
        n_au, n = log_view.shape
        types = draw_positive_types(n, n_au, s.p, generator, log_view.device).T
        chosen = torch.where(types == TYPE_MAX, log_max,
                             torch.where(types == TYPE_CENTROID, log_centroid, log_view))
    return torch.where(has_pos, chosen, log_view)      # empty P(a): types 1 and 3 fall back to 2


def _reference_positive(cos, same, log_view, s: _Settings, generator) -> torch.Tensor:
    """The public code's positive: one uniform u per AU picks max / mean / other-view for all anchors.
    P(a) keeps a itself and a' (no diagonal mask); the mean branch divides by 2B, not |P(a)|."""
    n_au, n = log_view.shape
    u = _uniform((n_au,), generator, log_view.device)[:, None]
    p_max, p_mean = s.p[TYPE_MAX], s.p[TYPE_CENTROID]
    log_max = _masked_max(cos, same) / s.tau
    log_mean = _masked_logsumexp(cos / s.tau, same)[0] - math.log(n)
    return torch.where(u < p_max, log_max, torch.where(u < p_max + p_mean, log_mean, log_view))


def aunce_loss(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, *, variant: str = "paper",
               tau: float = 0.5, p=None, beta_pos: float | None = None, beta_neg: float | None = None,
               weights=None, generator: torch.Generator | None = None, positive: str = "sampled",
               reweight: bool = True, beta_plus_one: bool = False, minority_by: str = "label",
               rates=None) -> torch.Tensor:
    """The AUNCE loss of a batch of view pairs, a scalar in fp32 (fp64 for fp64 inputs).

    variant="paper" (the default): for AU i and known anchor a, P(a) = other pool rows with a's
    label (not a, not a'), N(a) = rows with the other known label. The positive type is drawn per
    anchor and AU with probabilities p = (highest similarity, other view, centroid), default
    (0.15, 0.15, 0.7); types 1 and 3 fall back to the other view when P(a) is empty. The negative
    term is sum_{j in N(a)} exp(beta z_a.z_j / tau), beta = beta_pos (1.2) for a minority anchor
    (label 1, or by training rate with minority_by="rate") and beta_neg (0.4) otherwise; beta = 1
    with reweight=False, beta + 1 with beta_plus_one=True (eq. 4's printed exponent). Per anchor
    -log(pos / (pos + neg)); mean over the known anchors of each AU, times w_i (`weights`, none
    when None); mean over the AUs with at least one anchor with a non-empty N(a) (0 if none).
    positive="max" | "view" | "centroid" fixes the type instead of drawing it (Table VII BL: "max").

    variant="reference": the public code. Embeddings are taken post-ReLU (the identity on an
    ANFL head's output), P(a) includes a and a', one uniform u per AU (shared by all anchors) picks
    max (u < p1) / mean over P(a) divided by 2B (u < p1 + p3) / other view, p defaults to
    (0.2, 0.2, 0.6) i.e. the code's (max 0.2, mean 0.6, view 0.2), beta 1.2 / 0.8, an AU with no
    negatives gives 0 and still counts, mean over all AUs. Unknown labels take part in nothing
    here too (the public code has no unknown labels).

    Embeddings are L2-normalised per AU here (the identity on normalised inputs). Random draws:
    paper, ``torch.rand((2B, n_au))`` (see `draw_positive_types`); reference, ``torch.rand((n_au,))``;
    from `generator` on its device when given, so a test can replay them. The computation runs in
    log space, outside autocast, and follows the inputs' device.
    """
    s = _settings(variant, tau, p, beta_pos, beta_neg, positive, reweight, beta_plus_one, minority_by)
    device = z1.device
    weights = None if weights is None else torch.as_tensor(weights, device=device).reshape(-1)
    rates = None if rates is None else torch.as_tensor(rates, device=device).reshape(-1)
    _check_inputs(z1, z2, labels, weights, rates, s)
    b = z1.shape[0]
    with torch.autocast(device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(z1.dtype, z2.dtype), torch.float32)
        z = torch.cat([z1, z2]).to(dtype)
        if s.variant == "reference":
            z = z.relu()
        z = F.normalize(z, dim=-1).transpose(0, 1)            # [n_au, 2B, d]
        cos = z @ z.transpose(1, 2)                            # z_a . z_b, [n_au, 2B, 2B]
        y = torch.cat([labels, labels]).to(device).T           # [n_au, 2B]
        known = y >= 0
        pair_known = known[:, :, None] & known[:, None, :]
        same = pair_known & (y[:, :, None] == y[:, None, :])
        different = pair_known & (y[:, :, None] != y[:, None, :])
        rows = torch.arange(2 * b, device=device)
        partner = (rows + b) % (2 * b)
        log_view = cos[:, rows, partner] / s.tau

        exponent = _negative_exponent(y, s, rates, dtype)
        log_neg, has_neg = _masked_logsumexp((exponent / s.tau)[..., None] * cos, different)
        if s.variant == "paper":
            own = (rows[:, None] == rows[None, :]) | (partner[:, None] == rows[None, :])
            log_pos = _paper_positive(cos, same, own, log_view, s, generator)
        else:
            log_pos = _reference_positive(cos, same, log_view, s, generator)

        # -log(pos / (pos + neg)) = softplus(log neg - log pos); 0 when N(a) is empty (neg = 0).
        # threshold=50: exact in fp64 too, and still linear before exp overflows at tiny tau.
        loss = F.softplus(log_neg - log_pos, threshold=50)
        per_anchor = torch.where(has_neg, loss, torch.zeros_like(loss))
        per_au = per_anchor.sum(-1) / known.sum(-1).clamp(min=1)
        if weights is not None:
            per_au = per_au * weights.to(dtype)
        if s.variant == "reference":
            return per_au.mean()
        counted = has_neg.any(-1)
        return (per_au * counted).sum() / counted.sum().clamp(min=1)


class AUNCELoss(AULoss):
    """AUNCE as a module: options as in `aunce_loss`, plus the per-AU weights.

    use_weights (default: on for the paper variant, off for the reference one) applies w_i, set by
    `set_rates(training_rates)`, `set_weights(w)` or `weights=`; a weighted loss refuses to run
    without them. seed= gives the loss its own CPU generator, so every rank draws the same types.
    """

    views = 2
    global_batch = True
    regime = "linear_probe"
    augment = "simclr"

    def __init__(self, variant: str = "paper", tau: float = 0.5, p=None, beta_pos: float | None = None,
                 beta_neg: float | None = None, positive: str = "sampled", reweight: bool = True,
                 beta_plus_one: bool = False, minority_by: str = "label", use_weights: bool | None = None,
                 weights=None, rates=None, seed: int | None = None):
        s = _settings(variant, tau, p, beta_pos, beta_neg, positive, reweight, beta_plus_one, minority_by)
        if use_weights is None:
            use_weights = weights is not None or VARIANT_DEFAULTS[variant]["use_weights"]
        elif not use_weights and weights is not None:
            raise ConfigError("weights= given with use_weights=False; drop one of them")
        super().__init__()
        self.uses_weights = bool(use_weights)
        self.settings = s
        if rates is not None:
            self.set_rates(rates)
        if weights is not None:   # explicit weights win over those derived from rates
            self.set_weights(weights)
        if seed is not None:
            self.reseed(seed)

    def batch_loss(self, outs, labels: torch.Tensor) -> torch.Tensor:
        return self(outs[0].embeddings.float(), outs[1].embeddings.float(), labels)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        weights = None
        if self.uses_weights:
            if self.weights is None:
                raise ConfigError("this AUNCE loss applies the per-AU weights w_i (eq. 1): call "
                                  "loss.set_rates(training_rates) or pass weights=, or set use_weights=False")
            weights = self._weights_for(z1.shape[1], z1)
        s = self.settings
        return aunce_loss(z1, z2, labels, variant=s.variant, tau=s.tau, p=s.p, beta_pos=s.beta_pos,
                          beta_neg=s.beta_neg, weights=weights, positive=s.positive, reweight=s.reweight,
                          beta_plus_one=s.beta_plus_one, minority_by=s.minority_by, rates=self._buffer_on("rates", z1),
                          generator=generator if generator is not None else self.generator)

    def extra_repr(self) -> str:
        s = self.settings
        return (f"variant={s.variant!r}, tau={s.tau}, p={s.p}, positive={s.positive!r}, "
                f"reweight={s.reweight}, "
                f"beta=({s.beta_pos}, {s.beta_neg}), beta_plus_one={s.beta_plus_one}, "
                f"minority_by={s.minority_by!r}, use_weights={self.uses_weights}")


def _preset(**fixed):
    """A factory for AUNCELoss with `fixed` options; its signature lists only the options left to
    set (those that still matter), so create_loss rejects the others by name."""
    irrelevant = set()
    if fixed.get("positive", "sampled") != "sampled":
        irrelevant.add("p")
    if fixed.get("reweight", True) is False:
        irrelevant |= {"beta_pos", "beta_neg", "beta_plus_one", "minority_by"}
    signature = inspect.signature(AUNCELoss)
    params = [q for n, q in signature.parameters.items() if n not in fixed and n not in irrelevant]

    def factory(**options) -> AUNCELoss:
        return AUNCELoss(**fixed, **options)

    factory.__signature__ = signature.replace(parameters=params)
    factory.fixed = fixed
    return factory


register_loss("aunce.paper")(_preset(variant="paper"))
register_loss("aunce.reference")(_preset(variant="reference"))
for _model, _switches in TABLE_VII.items():
    register_loss(f"aunce.{_model}")(_preset(variant="paper", **_switches))
