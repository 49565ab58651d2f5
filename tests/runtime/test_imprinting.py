"""Weight imprinting: useful predictions from class means before any training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from personalizer import NoSamplesError, NotImprintableError
from personalizer.model.imprinting import TARGET_CONFIDENCE, imprinted_head
from tests.support.synthetic_images import colour_image


def _add(model, per_class: int, classes=range(4), seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        for _ in range(per_class):
            model.add_sample(colour_image(c, rng), "ABCD"[c])


def test_imprinted_model_classifies_held_out_frames_without_training(model) -> None:
    _add(model, 5)
    model.initialize_from_samples()
    assert model.steps == 0
    rng = np.random.default_rng(99)
    results = [model.predict(colour_image(c, rng))[0] for c in range(4) for _ in range(5)]
    right = [r.class_name == "ABCD"[i // 5] for i, r in enumerate(results)]
    assert sum(right) >= 18
    assert np.median([r.confidence for r in results]) > 0.6


def test_imprinted_kernel_is_scaled_unit_class_means_and_zero_bias(model) -> None:
    _add(model, 3, classes=(0, 2))  # B and D have no samples
    model.initialize_from_samples()
    kernel, bias = model.parameters()
    assert not bias.any()
    assert not kernel[:, 1].any() and not kernel[:, 3].any()
    snapshot = model.sample_snapshot()
    for c in (0, 2):
        mean = np.mean(
            [
                b.astype(np.float64)
                for b, lab in zip(snapshot.bottlenecks, snapshot.labels, strict=True)
                if lab == c
            ],
            axis=0,
        )
        cosine = kernel[:, c] @ mean / (np.linalg.norm(kernel[:, c]) * np.linalg.norm(mean))
        assert cosine == pytest.approx(1.0, abs=1e-5)
    # One scale for all columns.
    assert np.linalg.norm(kernel[:, 0]) == pytest.approx(np.linalg.norm(kernel[:, 2]), rel=1e-5)


def test_imprinting_scale_gives_the_median_sample_the_target_confidence() -> None:
    rng = np.random.default_rng(0)
    centres = rng.random((4, 64))
    labels = np.repeat(np.arange(4), 10)
    samples = [centres[c] + 0.3 * rng.random(64) for c in labels]
    kernel, bias = imprinted_head(samples, labels, 4)
    logits = np.stack(samples) @ kernel + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    own = p[np.arange(40), labels]
    # The median sample has its target confidence when the other classes tie; they do not
    # quite, so allow a little either way.
    assert np.median(own) == pytest.approx(TARGET_CONFIDENCE, abs=0.05)


def test_imprinting_then_training_continues_from_the_imprint(model) -> None:
    _add(model, 5)
    model.initialize_from_samples()
    first = model.train(1)
    assert first < np.log(4)  # better than the uniform start of an untrained head
    assert model.steps == 1


def test_imprinting_works_on_an_unpooled_bottleneck(make_model, spatial_bundle) -> None:
    model = make_model(spatial_bundle)
    _add(model, 4)
    model.initialize_from_samples()
    assert model.parameters()[0].shape == (3 * 3 * 1280, 4)
    rng = np.random.default_rng(5)
    right = sum(model.predict(colour_image(c, rng))[0].class_name == "ABCD"[c] for c in range(4))
    assert right >= 3


def test_imprinting_needs_samples(model) -> None:
    with pytest.raises(NoSamplesError):
        model.initialize_from_samples()


def test_mlp_head_cannot_be_imprinted(make_model, mlp_bundle) -> None:
    model = make_model(mlp_bundle)
    _add(model, 1)
    with pytest.raises(NotImprintableError, match="single dense softmax"):
        model.initialize_from_samples()


def test_floating_point_flags_of_the_products_never_reach_the_log() -> None:
    # numpy 2 on arm64 raises spurious divide/overflow/invalid flags from its BLAS; here a
    # sample that really overflows float32 stands in for them: no warning, a finite scale.
    from personalizer.model.imprinting import imprint
    from personalizer.model.samples import class_sums

    rng = np.random.default_rng(0)
    rows = [rng.uniform(0, 1, 64).astype(np.float32) for _ in range(6)]
    rows.append(np.full(64, 3e38, dtype=np.float32))  # its logits overflow
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    sums, counts = class_sums(rows[:6], labels[:6], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = imprint(sums, counts, rows, labels)
    assert np.isfinite(made.scale) and made.scale > 0
