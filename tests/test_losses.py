"""The loss registry, WCE, the AU weights, and every AUNCE variant against a loop-based float64
reading of the spec (tests/loss_reference.py) given the same random draws."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from austack.errors import ConfigError, UnknownNameError
from austack.losses import (AUNCELoss, aunce_loss, au_weights, create_loss, list_losses, occurrence_rates,
                            wce_loss)
from austack.losses.aunce import TABLE_VII
from austack.losses.weights import AUSkippedWarning, skipped_aus

from loss_reference import aunce_loop

B, N_AU, D = 6, 6, 8
SEED = 7


def batch(b=B, n_au=N_AU, d=D, dtype=torch.float64, seed=0):
    """Two views and labels that exercise every rule: AU 0 has no negatives, AU 1 has unknowns,
    AU 2 has a single active image (its anchors have an empty P(a)), AU 3 is entirely unknown."""
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, n_au, d, generator=g, dtype=dtype)
    z2 = z1 + 0.3 * torch.randn(b, n_au, d, generator=g, dtype=dtype)
    labels = torch.randint(0, 2, (b, n_au), generator=g)
    labels[:, 0] = 1
    labels[::2, 1] = -1
    labels[:, 2] = 0
    labels[1, 2] = 1
    labels[:, 3] = -1
    labels[0, 4], labels[1, 4], labels[2, 5], labels[3, 5] = 1, 0, 1, 0   # both classes present
    return z1, z2, labels


def draws(variant, b=B, n_au=N_AU):
    """Replay the loss's draws: one torch.rand of [2B, n_au] (paper) or [n_au] (reference)."""
    shape = (2 * b, n_au) if variant == "paper" else (n_au,)
    return torch.rand(shape, generator=torch.Generator().manual_seed(SEED)).numpy()


WEIGHTS = torch.tensor([0.5, 1.5, 2.0, 1.0, 0.7, 1.3], dtype=torch.float64)
RATES = torch.tensor([0.9, 0.3, 0.1, 0.7, 0.5, 0.8], dtype=torch.float64)

CASES = {
    "paper": dict(variant="paper", weights=WEIGHTS),
    "paper-unweighted": dict(variant="paper"),
    "paper-beta_plus_one": dict(variant="paper", weights=WEIGHTS, beta_plus_one=True),
    "paper-minority_by_rate": dict(variant="paper", minority_by="rate", rates=RATES),
    "paper-view": dict(variant="paper", positive="view"),
    "paper-centroid": dict(variant="paper", positive="centroid", tau=0.2),
    "paper-p": dict(variant="paper", p=(0.4, 0.4, 0.2), beta_pos=1.5, beta_neg=0.6),
    "reference": dict(variant="reference"),
    "reference-weighted": dict(variant="reference", weights=WEIGHTS),
    "reference-unweighted-beta": dict(variant="reference", reweight=False, tau=0.3),
    **{f"table7-{m}": dict(variant="paper", reweight=s["reweight"], positive=s["positive"],
                           weights=WEIGHTS if s["use_weights"] else None) for m, s in TABLE_VII.items()},
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(CASES))
def test_aunce_matches_loop_reference(case, seed):
    options = CASES[case]
    z1, z2, labels = batch(seed=seed)
    got = aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(SEED), **options)
    want = aunce_loop(z1.numpy(), z2.numpy(), labels.numpy(), u=draws(options["variant"]),
                      **{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in options.items()})
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("model", list(TABLE_VII))
def test_registered_table_vii_models_match_loop_reference(model):
    z1, z2, labels = batch(seed=3)
    loss = create_loss(f"aunce.{model}")
    switches = TABLE_VII[model]
    if switches["use_weights"]:
        loss.set_weights(WEIGHTS)
    got = loss(z1, z2, labels, generator=torch.Generator().manual_seed(SEED))
    want = aunce_loop(z1.numpy(), z2.numpy(), labels.numpy(), u=draws("paper"), positive=switches["positive"],
                      reweight=switches["reweight"],
                      weights=WEIGHTS.numpy() if switches["use_weights"] else None)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_reference_variant_sees_post_relu_features_and_self_in_positives():
    z1, z2, labels = batch(seed=4)
    relu_first = aunce_loss(z1.relu(), z2.relu(), labels, variant="reference",
                            generator=torch.Generator().manual_seed(SEED))
    raw = aunce_loss(z1, z2, labels, variant="reference", generator=torch.Generator().manual_seed(SEED))
    assert raw.item() == pytest.approx(relu_first.item(), rel=1e-12)
    # a draw below p1 picks the max branch, which is the self pair: exp(1/tau) for every anchor
    z1, z2 = torch.rand(4, 1, 5, dtype=torch.float64), torch.rand(4, 1, 5, dtype=torch.float64)
    labels = torch.tensor([[1], [0], [1], [0]])
    seed = next(s for s in range(100) if torch.rand((1,), generator=torch.Generator().manual_seed(s)) < 0.2)
    got = aunce_loss(z1, z2, labels, variant="reference", generator=torch.Generator().manual_seed(seed))
    z = F.normalize(torch.cat([z1, z2])[:, 0], dim=-1)
    y = torch.cat([labels, labels])[:, 0]
    cos = z @ z.T
    beta = torch.tensor([1.2 if v == 1 else 0.8 for v in y.tolist()], dtype=torch.float64)
    neg = ((y[:, None] != y[None, :]) * torch.exp(beta[:, None] * cos / 0.5)).sum(1)
    pos = torch.full_like(neg, math.exp(1 / 0.5))
    assert got.item() == pytest.approx((-torch.log(pos / (pos + neg))).mean().item(), rel=1e-10)


def test_draws_replay_and_vary():
    z1, z2, labels = batch(seed=5)
    first = aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(1))
    again = aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(1))
    others = {aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(s)).item()
              for s in range(2, 8)}
    assert first.item() == again.item()
    assert len(others | {first.item()}) > 1
    seeded = [create_loss("aunce.paper", seed=3, use_weights=False)(z1, z2, labels) for _ in range(2)]
    assert seeded[0].item() == seeded[1].item()


def test_no_counted_au_gives_zero_with_a_graph():
    z1, z2, _ = batch()
    z1.requires_grad_(True)
    labels = torch.ones(B, N_AU, dtype=torch.long)
    labels[:, 1] = -1
    loss = aunce_loss(z1, z2, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z1.grad, torch.zeros_like(z1))
    assert aunce_loss(z1, z2, labels, variant="reference").item() == 0.0


@pytest.mark.parametrize("name", list_losses("aunce*"))
def test_every_aunce_loss_has_finite_gradients(name):
    z1, z2, labels = batch(dtype=torch.float32)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    loss = create_loss(name, rates=RATES.numpy())
    assert (loss.views, loss.global_batch, loss.regime, loss.augment) == (2, True, "linear_probe", "simclr")
    value = loss(z1, z2, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    assert z1.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", ["paper", "reference"])
@pytest.mark.parametrize("tau", [0.05, 1e-3])
def test_stable_at_small_tau_with_near_identical_embeddings(variant, tau):
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, N_AU, 64, generator=g)
    z1 = (base + 1e-4 * torch.randn(16, N_AU, 64, generator=g)).requires_grad_(True)
    z2 = base + 1e-4 * torch.randn(16, N_AU, 64, generator=g)
    labels = torch.randint(0, 2, (16, N_AU), generator=g)
    labels[0], labels[1] = 0, 1
    loss = aunce_loss(z1, z2, labels, variant=variant, tau=tau, generator=torch.Generator().manual_seed(SEED))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all()
    exact = aunce_loss(z1.detach().double(), z2.double(), labels, variant=variant, tau=tau,
                       generator=torch.Generator().manual_seed(SEED))
    assert loss.item() == pytest.approx(exact.item(), rel=1e-3, abs=1e-3)


def test_bf16_autocast_is_computed_in_fp32():
    z1, z2, labels = batch(dtype=torch.float32, seed=2)
    fp32 = aunce_loss(z1, z2, labels, generator=torch.Generator().manual_seed(SEED))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = aunce_loss(z1.bfloat16(), z2.bfloat16(), labels, generator=torch.Generator().manual_seed(SEED))
        wce = wce_loss(torch.rand(B, N_AU).bfloat16(), labels.clamp(min=0))
    assert low.dtype == torch.float32 and wce.dtype == torch.float32
    assert low.item() == pytest.approx(fp32.item(), rel=2e-2)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_device_follows_input(device):
    z1, z2, labels = (t.to(device) for t in batch(dtype=torch.float32))
    for name in list_losses("aunce*"):
        loss = create_loss(name, rates=RATES.numpy()).to(device)
        assert loss(z1, z2, labels).device.type == device
    assert create_loss("wce")(torch.rand(B, N_AU, device=device), labels).device.type == device


# --- registry --------------------------------------------------------------------------------

def test_registry_lists_and_builds():
    assert list_losses("aunce.*") == ["aunce.A", "aunce.B", "aunce.C", "aunce.D", "aunce.E",
                                      "aunce.paper", "aunce.reference"]
    assert "wce" in list_losses()
    loss = create_loss("aunce.paper", tau=None, p=None, beta_neg=0.5)   # None keeps the default
    assert loss.settings.tau == 0.5 and loss.settings.beta_neg == 0.5
    assert create_loss("aunce.reference").settings.beta_neg == 0.8


def test_unknown_loss_name_lists_close_names():
    with pytest.raises(UnknownNameError, match="did you mean 'aunce.paper'"):
        create_loss("aunce.papr")


def test_options_that_a_preset_fixes_or_ignores_are_refused():
    with pytest.raises(ConfigError, match="'aunce.A' has no option.*'reweight'"):
        create_loss("aunce.A", reweight=True)
    with pytest.raises(ConfigError, match="has no option.*'p'"):
        create_loss("aunce.D", p=(0.2, 0.2, 0.6))
    with pytest.raises(ConfigError, match="has no option.*'weights_x'"):
        create_loss("wce", weights_x=1)


@pytest.mark.parametrize("options, message", [
    (dict(p=(0.5, 0.5, 0.5)), "summing to 1"),
    (dict(tau=0), "tau must be positive"),
    (dict(positive="lowest"), "unknown positive"),
    (dict(minority_by="size"), "unknown minority_by"),
    (dict(variant="reference", positive="max"), "paper variant only"),
])
def test_bad_options_fail_at_construction(options, message):
    options = {"variant": "paper", **options}
    with pytest.raises(ConfigError, match=message):
        create_loss(f"aunce.{options.pop('variant')}", **options)


def test_weighted_loss_refuses_to_run_without_weights():
    z1, z2, labels = batch()
    with pytest.raises(ConfigError, match="set_rates"):
        create_loss("aunce.paper")(z1, z2, labels)
    with pytest.raises(ConfigError, match="minority_by='rate' needs"):
        create_loss("aunce.paper", minority_by="rate", use_weights=False)(z1, z2, labels)
    with pytest.raises(ConfigError, match="labels must be 1, 0 or -1"):
        aunce_loss(z1, z2, labels * 9)


def test_set_rates_derives_the_weights():
    loss = create_loss("aunce.paper")
    loss.set_rates(RATES.numpy())
    assert torch.allclose(loss.weights, au_weights(RATES.numpy()))
    assert create_loss("aunce.reference", rates=RATES.numpy()).weights is None   # w_i only when asked
    assert isinstance(create_loss("aunce.E"), AUNCELoss)


# --- WCE and the AU weights ------------------------------------------------------------------

def test_wce_matches_eq1_with_unknowns_masked():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(10, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(-1, 2, (10, 4), generator=g)
    w = torch.tensor([0.5, 1.0, 1.5, 1.0], dtype=torch.float64)
    total, count = 0.0, 0
    for n in range(10):
        for i in range(4):
            if labels[n, i] >= 0:
                y, p = float(labels[n, i]), float(probs[n, i])
                total += -float(w[i]) * (y * math.log(p) + (1 - y) * math.log(1 - p))
                count += 1
    loss = create_loss("wce", weights=w)
    assert (loss.views, loss.global_batch, loss.regime) == (1, False, "supervised")
    assert loss(probs, labels).item() == pytest.approx(total / count, rel=1e-10)
    known = labels.clamp(min=0).double()
    assert create_loss("wce")(probs, known).item() == pytest.approx(
        F.binary_cross_entropy(probs, known).item(), rel=1e-10)


def test_wce_is_finite_for_saturated_probabilities():
    probs = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([[1, 0], [1, -1]])
    loss = create_loss("wce")(probs, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(probs.grad).all()
    assert probs.grad[1, 1] == 0   # the unknown entry takes no part
    assert create_loss("wce")(probs, torch.full((2, 2), -1)).item() == 0.0


def test_au_weights_follow_eq1_and_average_to_one():
    rates = np.array([0.2, 0.5, 0.1, 0.4])
    w = au_weights(rates).numpy()
    inv = 1 / rates
    np.testing.assert_allclose(w, 4 * inv / inv.sum(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    assert w[2] > w[0] > w[3] > w[1]


def test_au_weights_skip_an_au_that_never_occurs():
    """A rate of 0 or NaN (no known label) gives weight 0 and a warning naming the AU; the
    others follow eq. 1 among themselves; the message points at no option."""
    with pytest.warns(AUSkippedWarning, match=r"^AU4 never occur") as caught:
        w = au_weights([0.2, 0.0, 0.5], aus=[1, 4, 6]).numpy()
    assert "min_rate" not in str(caught[0].message)
    np.testing.assert_allclose(w, 2 * np.array([5, 0, 2]) / 7, rtol=1e-6)
    assert w[[0, 2]].mean() == pytest.approx(1.0) and np.isfinite(w).all()
    with pytest.warns(AUSkippedWarning, match="AU index 1"):
        assert au_weights([0.2, float("nan")]).tolist() == [1.0, 0.0]
    np.testing.assert_array_equal(skipped_aus([0.2, 0.0, float("nan")]), [False, True, True])
    with pytest.raises(ConfigError, match="no AU has a positive label"):
        au_weights([0.0, float("nan")], aus=[1, 4])
    clamped = au_weights([0.2, 0.0], min_rate=0.01).numpy()     # clamping: nothing skipped
    np.testing.assert_allclose(clamped, 2 * np.array([5, 100]) / 105, rtol=1e-6)


def test_wce_with_a_skipped_au_ignores_its_output():
    """The skipped AU's output gets no gradient; the loss stays finite."""
    loss = create_loss("wce")
    with pytest.warns(AUSkippedWarning):
        loss.set_rates([0.3, 0.0], aus=[1, 25])
    probs = torch.tensor([[0.9, 0.99], [0.2, 0.7]], requires_grad=True)
    out = loss(probs, torch.tensor([[1, 0], [0, 0]]))
    out.backward()
    assert torch.isfinite(out) and probs.grad[:, 1].abs().sum() == 0 and probs.grad[:, 0].abs().sum() > 0


def test_occurrence_rates_ignore_unknown_labels():
    labels = np.array([[1, -1, 0], [0, -1, 0], [1, -1, 0], [-1, -1, 1]])
    rates = occurrence_rates(labels)
    np.testing.assert_allclose(rates[[0, 2]], [2 / 3, 1 / 4])
    assert np.isnan(rates[1])
