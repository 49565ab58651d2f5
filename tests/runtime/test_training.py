"""Training: the seed's batching, real Adam state, loss reporting, stopping, edge cases."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from personalizer import NoSamplesError
from personalizer.model.batching import epoch_batches
from tests.support.synthetic_images import colour_image


def _add_colour_samples(model, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])


def _spy_steps(model, monkeypatch) -> list[tuple[np.ndarray, float]]:
    """Record (sample indices, loss) of every training step the model runs."""
    calls: list[tuple[np.ndarray, float]] = []
    real = model._head._step

    def spy(snapshot, batch, *rest):
        loss = real(snapshot, batch, *rest)
        calls.append((batch.copy(), loss))
        return loss

    monkeypatch.setattr(model._head, "_step", spy)
    return calls


# --- the batching rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sizes"), [(1, [1]), (7, [7]), (20, [20]), (40, [20, 20]), (45, [20, 20, 20])]
)
def test_batches_have_one_size_and_cover_the_epoch(n, sizes) -> None:
    batches = list(epoch_batches(n, 20, np.random.default_rng(0)))
    assert [len(b) for b in batches] == sizes
    assert set(np.concatenate(batches).tolist()) == set(range(n))


def test_the_last_batch_overlaps_the_one_before() -> None:
    batches = list(epoch_batches(45, 20, np.random.default_rng(0)))
    order = np.concatenate([batches[0], batches[1]])
    # The third batch is the last 20 of the shuffled order: 15 of batch 2's samples + 5 new.
    assert len(set(batches[2]) & set(batches[1])) == 15
    assert len(set(batches[2]) - set(order)) == 5


def test_each_epoch_is_shuffled_differently() -> None:
    rng = np.random.default_rng(0)
    first, second = (np.concatenate(list(epoch_batches(40, 20, rng))) for _ in range(2))
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)


@pytest.mark.parametrize(("n", "steps_per_epoch", "batch"), [(5, 1, 5), (20, 1, 20), (45, 3, 20)])
def test_training_runs_the_seed_batches(model, monkeypatch, n, steps_per_epoch, batch) -> None:
    _add_colour_samples(model, n)
    calls = _spy_steps(model, monkeypatch)
    model.train(2)
    assert model.steps == 2 * steps_per_epoch == len(calls)
    assert {len(b) for b, _ in calls} == {batch}
    assert model._models.train_head.batch == batch


def test_epoch_loss_is_the_mean_of_its_batch_losses(model, monkeypatch) -> None:
    _add_colour_samples(model, 45)
    calls = _spy_steps(model, monkeypatch)
    reported: list[tuple[int, float]] = []
    last = model.train(2, on_loss=lambda epoch, loss: reported.append((epoch, loss)))
    losses = [loss for _, loss in calls]
    assert [e for e, _ in reported] == [1, 2]
    assert reported[0][1] == pytest.approx(np.mean(losses[:3]), rel=1e-6)
    assert reported[1][1] == pytest.approx(np.mean(losses[3:]), rel=1e-6)
    assert last == reported[1][1]
    model.train(1, on_loss=lambda epoch, loss: reported.append((epoch, loss)))
    assert reported[-1][0] == 3  # epochs count across calls


# --- the optimizer's arithmetic ----------------------------------------------------------------


def _softmax_head_gradients(x, y, kernel, bias):
    logits = x @ kernel + bias
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * np.log(p), axis=1))
    delta = (p - y) / len(x)
    return loss, x.T @ delta, delta.sum(axis=0)


def _one_batch_model(make_model, bundle, n=20):
    model = make_model(bundle)
    rng = np.random.default_rng(7)
    x = rng.random((n, 1280)).astype(np.float32)
    # Unbalanced, so no gradient is zero in exact arithmetic: Adam's normalised step would turn
    # float32 rounding noise of a zero gradient into a full-size update.
    labels = np.repeat([0, 1, 2, 3], [8, 6, 4, 2])[:n]
    for row, label in zip(x, labels, strict=True):
        model.add_sample_bottleneck(row, "ABCD"[label])
    # The model keeps samples as float16: the reference computes on what it keeps.
    stored = x.astype(np.float16).astype(np.float64)
    return model, stored, np.eye(4)[labels]


def test_adam_state_is_fed_back_step_after_step(make_model, bundle) -> None:
    """Three Adam steps agree with Keras' Adam in numpy, moments and step count carried over."""
    model, x, y = _one_batch_model(make_model, bundle)
    hp = model.bundle.manifest.optimizer.hyperparameters
    lr, b1, b2, eps = hp["learning_rate"], hp["beta1"], hp["beta2"], hp["eps"]
    params = [p.astype(np.float64) for p in model.parameters()]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, 4):
        loss, *grads = _softmax_head_gradients(x, y, *params)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            params[i] = params[i] - alpha * m[i] / (np.sqrt(v[i]) + eps)
        reported = model.train(1)  # one batch of all 20 samples
        assert reported == pytest.approx(loss, rel=1e-5)
        for got, want in zip(model.parameters(), params, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        state = model.optimizer_state()
        np.testing.assert_allclose(state[0], m[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(state[2], v[0], rtol=1e-3, atol=1e-9)
        assert float(state[4]) == t
    assert model.steps == 3


def test_sgd_step_is_parameter_minus_rate_times_gradient(make_model, sgd_bundle) -> None:
    model, x, y = _one_batch_model(make_model, sgd_bundle)
    lr = model.bundle.manifest.optimizer.hyperparameters["learning_rate"]
    assert model.optimizer_state() == ()
    params = [p.astype(np.float64) for p in model.parameters()]
    for _ in range(3):
        _, *grads = _softmax_head_gradients(x, y, *params)
        params = [p - lr * g for p, g in zip(params, grads, strict=True)]
        model.train(1)
    for got, want in zip(model.parameters(), params, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# --- edge cases and control ------------------------------------------------------------------


def test_training_without_samples_is_a_clear_error(model) -> None:
    with pytest.raises(NoSamplesError, match="no samples to train on"):
        model.train()
    assert model.steps == 0


def test_training_on_one_sample_works(model) -> None:
    _add_colour_samples(model, 1)
    losses = [model.train(1) for _ in range(20)]
    assert model.steps == 20
    # One class with samples: the other slots are masked, so it is certain and there is
    # nothing to lose.
    assert all(math.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-6) for loss in losses)
    assert model.predict(colour_image(0, np.random.default_rng(0)))[0].class_name == "A"


def test_bad_epoch_count_is_refused(model) -> None:
    with pytest.raises(ValueError, match="epochs"):
        model.train(0)


def test_stop_before_training_runs_no_batch(model) -> None:
    _add_colour_samples(model, 8)
    stop = threading.Event()
    stop.set()
    reported = []
    assert math.isnan(model.train(5, on_loss=lambda *a: reported.append(a), stop=stop))
    assert model.steps == 0 and reported == []


def test_stop_set_between_epochs_ends_training(model) -> None:
    _add_colour_samples(model, 8)
    stop = threading.Event()
    reported = []

    def on_loss(epoch, loss):
        reported.append(epoch)
        stop.set()

    model.train(10, on_loss=on_loss, stop=stop)
    assert reported == [1] and model.epochs == 1 and model.steps == 1


def test_stop_in_the_middle_of_an_epoch_ends_it_after_the_batch(model, monkeypatch) -> None:
    _add_colour_samples(model, 45)
    stop = threading.Event()
    real = model._head._step
    monkeypatch.setattr(
        model._head, "_step", lambda s, b, *rest: (stop.set(), real(s, b, *rest))[1]
    )
    reported = []
    loss = model.train(3, on_loss=lambda *a: reported.append(a), stop=stop)
    assert model.steps == 1 and model.epochs == 0 and reported == []
    assert math.isfinite(loss)


def test_loss_goes_down_on_learnable_images(model) -> None:
    _add_colour_samples(model, 40)
    losses = []
    model.train(30, on_loss=lambda epoch, loss: losses.append(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_mlp_head_with_four_parameter_tensors_trains(make_model, mlp_bundle) -> None:
    model = make_model(mlp_bundle)
    assert [p.shape for p in model.parameters()] == [(1280, 32), (32,), (32, 4), (4,)]
    assert len(model.optimizer_state()) == 9  # m and v of each parameter, and the step
    _add_colour_samples(model, 40)
    losses = []
    model.train(30, on_loss=lambda epoch, loss: losses.append(loss))
    assert losses[-1] < 0.7 * losses[0]
    rng = np.random.default_rng(11)
    right = sum(model.predict(colour_image(c, rng))[0].class_name == "ABCD"[c] for c in range(4))
    assert right >= 3


@pytest.mark.parametrize("size", [(120, 160), (104, 136)])
def test_unpooled_bottleneck_trains_and_predicts(make_model, spatial_bundle, size) -> None:
    """Frames 1.25x the model's size take Pillow's shrink, 1.08x OpenCV's bilinear (when
    loaded, as the OpenCV camera has it; preprocess.py): the head learns the same from both."""
    if size == (104, 136):
        pytest.importorskip("cv2")
    model = make_model(spatial_bundle)
    assert model.bottleneck_shape == (3, 3, 1280)
    rng = np.random.default_rng(12)
    frames = [(c, colour_image(c, rng, size=size)) for c in range(4) for _ in range(5)]
    for c, frame in frames:
        model.add_sample(frame, "ABCD"[c])
    losses = []
    model.train(30, on_loss=lambda epoch, loss: losses.append(loss))
    assert losses[-1] < 0.5 * losses[0]
    right = sum(model.predict(frame)[0].class_name == "ABCD"[c] for c, frame in frames)
    assert right >= 18
