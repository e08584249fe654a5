import math

import pytest
import torch

from w2s_ray.errors import UserError
from w2s_ray.train.losses import (
    EntropyLoss,
    GceLoss,
    KlLoss,
    LogConfLoss,
    ProductLoss,
    WindowLoss,
    XentLoss,
    balance_labels,
    build_loss,
    harden_to_balance,
    soft_cross_entropy,
    warmup_weight,
)


def test_xent_matches_hard_cross_entropy_on_one_hot_targets():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.25], [-3.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    targets = torch.nn.functional.one_hot(labels, 2).float()
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert XentLoss()(logits, targets, 0.3).item() == pytest.approx(expected.item(), rel=1e-6)


def test_warmup_ramps_linearly_then_stays():
    weights = [warmup_weight(p, 0.5, 0.2) for p in (0.0, 0.05, 0.1, 0.2, 0.6, 1.0)]
    assert weights == pytest.approx([0.0, 0.125, 0.25, 0.5, 0.5, 0.5])


def test_warmup_is_not_a_step_function():
    # The reference implementation jumps from 0 to the max; ours must pass through values between.
    between = [warmup_weight(p / 100, 0.75, 0.2) for p in range(1, 20)]
    assert all(0 < w < 0.75 for w in between)
    assert between == sorted(between)


def test_hardening_matches_weak_class_balance():
    student = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.51, 0.4])
    student_probs = torch.stack([1 - student, student], 1)
    # Weak labels' mean P(1) is 25%; the student says 87% positive at threshold 0.5.
    weak_p1 = torch.tensor([0.9, 0.7, 0.1, 0.0, 0.1, 0.0, 0.1, 0.1])
    weak = torch.stack([1 - weak_p1, weak_p1], 1)
    hard = harden_to_balance(student_probs, weak)
    assert hard[:, 1].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]


def test_hardening_keeps_the_mean_of_the_soft_weak_labels_not_their_hardened_share():
    """The reference code and EleutherAI set the balance from the soft labels' mean: weak
    labels that are unsure positives (0.6) count as 0.6 of a positive, not as one."""
    student_p1 = torch.tensor([0.95, 0.9, 0.85, 0.8, 0.3, 0.2, 0.1, 0.05])
    student = torch.stack([1 - student_p1, student_p1], 1)
    weak_p1 = torch.tensor([0.6, 0.6, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0])
    weak = torch.stack([1 - weak_p1, weak_p1], 1)
    assert (weak_p1 > 0.5).float().mean() == 0.5 and weak_p1.mean() == pytest.approx(0.3)
    hard = harden_to_balance(student, weak)
    # 30% of 8 rows: the reference's quantile rule keeps the student's 3 most positive rows
    assert hard[:, 1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    # the reference's rule, written out: class 0 where P(0) reaches its mean_weak[1] quantile
    threshold = torch.quantile(student[:, 0], weak.mean(0)[1])
    assert hard[:, 0].bool().tolist() == (student[:, 0] >= threshold).tolist()


def test_hardening_a_shard_uses_the_whole_batch_threshold():
    """On data-parallel ranks each holds part of the batch; hardening must not depend on it."""
    torch.manual_seed(4)
    student = torch.softmax(torch.randn(12, 2), -1)
    weak = torch.softmax(torch.randn(12, 2) * 2, -1)
    whole = harden_to_balance(student, weak)
    mine, theirs = slice(0, 5), slice(5, 12)

    def gather(rows):  # what all_rows returns on rank 0 of 2
        other = torch.stack([student[theirs, 1], weak[theirs, 1]], 1)
        return torch.cat([rows, other])

    assert torch.equal(harden_to_balance(student[mine], weak[mine], gather), whole[mine])
    # without the other rank's rows the threshold moves for this batch
    assert not torch.equal(harden_to_balance(student[mine], weak[mine]), whole[mine])


def test_hardening_all_negative_weak_batch_gives_all_negative():
    student_probs = torch.tensor([[0.2, 0.8], [0.4, 0.6]])
    weak = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert harden_to_balance(student_probs, weak)[:, 1].tolist() == [0, 0]


def test_logconf_at_start_equals_xent_and_later_mixes_in_hardened_predictions():
    torch.manual_seed(0)
    logits = torch.randn(16, 2)
    weak_p1 = torch.rand(16)
    weak = torch.stack([1 - weak_p1, weak_p1], 1)
    loss = LogConfLoss(aux_max=0.5, warmup_frac=0.2)
    assert loss(logits, weak, 0.0).item() == pytest.approx(XentLoss()(logits, weak, 0.0).item())
    hardened = harden_to_balance(torch.softmax(logits, -1), weak)
    expected = soft_cross_entropy(logits, 0.5 * weak + 0.5 * hardened)
    assert loss(logits, weak, 0.9).item() == pytest.approx(expected.item(), rel=1e-6)
    half = soft_cross_entropy(logits, 0.75 * weak + 0.25 * hardened)
    assert loss(logits, weak, 0.1).item() == pytest.approx(half.item(), rel=1e-6)


def test_logconf_gradient_does_not_flow_through_hardened_targets():
    logits = torch.tensor([[0.3, -0.2], [0.1, 0.4]], requires_grad=True)
    weak = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    LogConfLoss(aux_max=1.0, warmup_frac=0.0)(logits, weak, 1.0).backward()
    probs = torch.softmax(logits.detach(), -1)
    target = harden_to_balance(probs, weak)
    assert torch.allclose(logits.grad, (probs - target) / 2, atol=1e-6)


def test_product_loss_targets_are_normalised_products():
    logits = torch.tensor([[1.0, 0.0]])
    weak = torch.tensor([[0.3, 0.7]])
    student = torch.softmax(logits, -1)
    product = weak * student
    expected = soft_cross_entropy(logits, product / product.sum())
    got = ProductLoss(alpha=1.0, beta_max=1.0, warmup_frac=0.0)(logits, weak, 0.5)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_build_loss_rejects_unknown_names_and_options():
    with pytest.raises(UserError, match="did you mean 'logconf'"):
        build_loss("logconff")
    with pytest.raises(UserError, match="aux_max"):
        build_loss("logconf", {"aux_maxx": 0.3})
    assert build_loss("logconf", {"aux_max": 0.75}).aux_max == 0.75


def test_gce_by_hand_and_its_limits():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    targets = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
    probs = torch.softmax(logits, -1)
    q = 0.7
    by_hand = ((targets * (1 - probs**q) / q).sum(-1)).mean()
    assert GceLoss(q)(logits, targets, 0.3).item() == pytest.approx(by_hand.item(), rel=1e-6)
    # q -> 0 is cross-entropy; q = 1 is the mean absolute error on the probabilities
    xent = soft_cross_entropy(logits, targets).item()
    assert GceLoss(1e-5)(logits, targets, 0.0).item() == pytest.approx(xent, rel=1e-3)
    mae = (targets * (1 - probs)).sum(-1).mean().item()
    assert GceLoss(1.0)(logits, targets, 0.0).item() == pytest.approx(mae, rel=1e-6)


def test_gce_pulls_less_than_xent_on_a_confidently_contradicted_label():
    """What makes it robust to noisy weak labels: the gradient is scaled by p_y^q."""

    def grad_norm(loss) -> float:
        logits = torch.tensor([[4.0, -4.0]], requires_grad=True)  # sure of class 0
        loss(logits, torch.tensor([[0.0, 1.0]]), 0.5).backward()  # the label says 1
        return logits.grad.norm().item()

    assert grad_norm(GceLoss(0.7)) < 0.01 * grad_norm(XentLoss())


def test_gce_rejects_q_outside_its_range():
    with pytest.raises(UserError, match="q must be in"):
        build_loss("gce", {"q": 0.0})
    assert build_loss("gce").q == 0.7


def _grad(loss, logits, targets, progress=1.0):
    logits = logits.clone().requires_grad_(True)
    loss(logits, targets, progress).backward()
    return logits.grad


def test_kl_by_hand_is_zero_at_a_match_and_has_xents_gradient():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.3, 0.3]])
    targets = torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    probs = torch.softmax(logits, -1)
    by_hand = (
        sum(
            sum(t * (math.log(t) - math.log(p)) for t, p in zip(tr, pr, strict=True) if t > 0)
            for tr, pr in zip(targets.tolist(), probs.tolist(), strict=True)
        )
        / 3
    )
    assert KlLoss()(logits, targets, 0.5).item() == pytest.approx(by_hand, rel=1e-5)
    assert KlLoss()(logits, probs, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(_grad(KlLoss(), logits, targets), _grad(XentLoss(), logits, targets))


def test_entropy_mixes_in_the_students_soft_prediction_and_trains_like_scaled_xent():
    torch.manual_seed(1)
    logits = torch.randn(10, 2) * 2
    weak_p1 = torch.rand(10)
    weak = torch.stack([1 - weak_p1, weak_p1], 1)
    loss = EntropyLoss(aux_max=0.5, warmup_frac=0.2)
    assert loss(logits, weak, 0.0).item() == pytest.approx(XentLoss()(logits, weak, 0).item())
    own = torch.softmax(logits, -1)
    expected = soft_cross_entropy(logits, 0.75 * weak + 0.25 * own)
    assert loss(logits, weak, 0.1).item() == pytest.approx(expected.item(), rel=1e-6)
    # the detached own-prediction target pulls with zero gradient: (1 − α)·xent's gradient
    for progress, alpha in ((0.1, 0.25), (0.9, 0.5)):
        got = _grad(loss, logits, weak, progress)
        assert torch.allclose(got, (1 - alpha) * _grad(XentLoss(), logits, weak), atol=1e-6)


def test_entropy_balance_batch_centres_the_labels_log_odds_on_the_whole_batch():
    weak_p1 = torch.tensor([0.9, 0.8, 0.7, 0.4, 1.0])
    weak = torch.stack([1 - weak_p1, weak_p1], 1)
    clamped = [min(max(p, 1e-7), 1 - 1e-7) for p in weak_p1.tolist()]
    log_odds = [math.log(p / (1 - p)) for p in clamped]
    mean = sum(log_odds) / len(log_odds)
    expected = [1 / (1 + math.exp(-(x - mean))) for x in log_odds]
    balanced = balance_labels(weak)
    assert balanced[:, 1].tolist() == pytest.approx(expected, rel=1e-4)
    assert torch.allclose(balanced.sum(-1), torch.ones(5))
    logits = torch.randn(5, 2)
    on = EntropyLoss(aux_max=0.0, balance_batch=1.0)(logits, weak, 0.5)
    assert on.item() == pytest.approx(soft_cross_entropy(logits, balanced).item(), rel=1e-5)

    # on 2 ranks, rank 0 centres on both ranks' rows, not on its own
    def gather(rows):
        theirs = torch.logit(weak_p1[3:].double().clamp(1e-7, 1 - 1e-7))[:, None]
        return torch.cat([rows, theirs])

    assert torch.allclose(balance_labels(weak[:3], gather), balanced[:3])
    assert not torch.allclose(balance_labels(weak[:3]), balanced[:3])


def test_window_counts_only_unsure_examples_over_the_whole_batch():
    # P(1) = 0.5, 0.6, 0.7, 0.95: with radius 0.15 the first two are unsure (max < 0.65)
    p1 = torch.tensor([0.5, 0.6, 0.7, 0.95])
    logits = torch.stack([torch.zeros(4), torch.logit(p1)], 1)
    targets = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.3, 0.7]])
    by_hand = (-math.log(0.5) - math.log(0.4)) / 4
    assert WindowLoss(0.15)(logits, targets, 0.3).item() == pytest.approx(by_hand, rel=1e-5)
    # confident rows get no gradient; radius 0.5 is plain cross-entropy
    assert _grad(WindowLoss(0.15), logits, targets)[2:].abs().max() == 0
    xent = soft_cross_entropy(logits, targets).item()
    assert WindowLoss(0.5)(logits, targets, 0.0).item() == pytest.approx(xent, rel=1e-6)


def test_new_losses_reject_bad_options():
    for options, message in (
        ({"radius": 0.0}, "radius must be in"),
        ({"radius": 0.6}, "radius must be in"),
    ):
        with pytest.raises(UserError, match=message):
            build_loss("window", options)
    for options, message in (
        ({"aux_max": 1.5}, "aux_max must be in"),
        ({"warmup_frac": -0.1}, "warmup_frac must be in"),
        ({"balance_batch": 0.5}, "balance_batch must be 0"),
    ):
        with pytest.raises(UserError, match=message):
            build_loss("entropy", options)
    with pytest.raises(UserError, match="no option"):
        build_loss("kl", {"q": 0.5})
    assert build_loss("entropy", {"balance_batch": 1.0}).balance_batch == 1.0
