"""The ANFL head: one feature per AU from a backbone's token map (ME-GraphAU, stage 1).

tokens [B, T, d] -> AFG: one LinearBlock per AU, mean over tokens -> V [B, n_au, d]
                 -> FGG: top-K similarity graph over the AUs of each sample -> V' [B, n_au, d]
                 -> classifier: p_i = cosine(V'_i, ReLU(s_i)), in [0, 1] because both are >= 0.

Layer sizes, initialisations and BatchNorm axes follow the published head; only the per-AU
layers are batched into one weight so the head runs without a Python loop over AUs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

HEADS: Registry[type[nn.Module]] = Registry("head")
register_head = HEADS.register

# K of the top-K AU graph: 4 for the 12-AU sets (BP4D, BP4D+, Aff-Wild2), 3 for DISFA's 8
# (the published settings); other AU counts take 3, and K never exceeds the number of AUs.
GRAPH_K_MANY_AUS = 4
GRAPH_K_FEW_AUS = 3
MANY_AUS = 12


def default_graph_k(n_au: int) -> int:
    """The published K for `n_au` AUs: 4 when there are 12 or more, 3 otherwise."""
    k = GRAPH_K_MANY_AUS if n_au >= MANY_AUS else GRAPH_K_FEW_AUS
    return min(k, n_au)


class LinearBlock(nn.Module):
    """Linear -> BatchNorm over channels -> ReLU, applied to every token of [B, T, C_in].

    The BatchNorm statistics pool the batch and the tokens, as BatchNorm1d over [B, C, T] does.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return F.relu(self.bn(y.flatten(0, -2)).view_as(y))


class AUFeatureGenerator(nn.Module):
    """AFG: a LinearBlock(d -> d) per AU on the shared tokens, averaged over tokens.

    The n_au blocks are one weight [n_au, d, d] and one BatchNorm over n_au * d channels, which
    is the same computation as n_au separate blocks with one matmul instead of a Python loop.
    """

    def __init__(self, n_au: int, dim: int):
        super().__init__()
        self.n_au, self.dim = n_au, dim
        self.weight = nn.Parameter(torch.empty(n_au, dim, dim))
        self.bias = nn.Parameter(torch.empty(n_au, dim))
        self.bn = nn.BatchNorm1d(n_au * dim)
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / dim))
        bound = 1.0 / math.sqrt(dim)          # nn.Linear's default bias init
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, _ = tokens.shape
        y = torch.einsum("btc,acd->btad", tokens, self.weight) + self.bias
        y = F.relu(self.bn(y.reshape(b * t, self.n_au * self.dim)))
        return y.view(b, t, self.n_au, self.dim).mean(dim=1)


class FacialGraph(nn.Module):
    """FGG: V' = ReLU(V + BN(A_hat V_lin(V) + U_lin(V))), BatchNorm over the AU axis.

    A links each AU to the K AUs whose features are most similar (S = V V^T, computed without
    gradient), A_hat = D^-1/2 A D^-1/2. Each row keeps exactly K neighbours (ties broken by
    index); the published code thresholds at the K-th value and so keeps ties.
    """

    def __init__(self, n_au: int, dim: int, k: int):
        super().__init__()
        if not 1 <= k <= n_au:
            raise ValueError(f"graph_k must be in 1..{n_au} for {n_au} AUs, got {k}")
        self.k = k
        self.u_lin = nn.Linear(dim, dim)
        self.v_lin = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(n_au)
        for lin in (self.u_lin, self.v_lin):
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0 / dim))

    def adjacency(self, v: torch.Tensor) -> torch.Tensor:
        """A_hat [B, n_au, n_au] of the top-K similarity graph of each sample."""
        v = v.detach()
        sim = v @ v.transpose(1, 2)
        a = torch.zeros_like(sim).scatter_(-1, sim.topk(self.k, dim=-1).indices, 1.0)
        d = a.sum(-1).rsqrt()
        return d.unsqueeze(2) * a * d.unsqueeze(1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        a_hat = self.adjacency(v)
        return F.relu(v + self.bn(a_hat @ self.v_lin(v) + self.u_lin(v)))


@register_head("anfl")
class ANFLHead(nn.Module):
    """AFG + FGG + cosine classifier. forward(tokens [B,T,d]) -> (V' [B,n_au,d], p [B,n_au])."""

    def __init__(self, n_au: int, dim: int, *, graph_k: int | None = None):
        super().__init__()
        self.graph_k = default_graph_k(n_au) if graph_k is None else int(graph_k)
        self.afg = AUFeatureGenerator(n_au, dim)
        self.fgg = FacialGraph(n_au, dim, self.graph_k)
        self.prototypes = nn.Parameter(torch.empty(n_au, dim))   # s_i, one per AU
        nn.init.xavier_uniform_(self.prototypes)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nodes = self.fgg(self.afg(tokens))
        s = F.normalize(F.relu(self.prototypes), dim=-1)
        probs = (F.normalize(nodes, dim=-1) * s).sum(-1)
        return nodes, probs
