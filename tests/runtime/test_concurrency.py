"""predict() from another thread while train() runs: consistent parameters, no deadlock."""

from __future__ import annotations

import threading

import numpy as np

from tests.support.synthetic_images import colour_image

MAX_EPOCHS = 5000
JOIN_TIMEOUT = 120  # seconds; a deadlock fails the test instead of hanging the suite


def _softmax(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = x.astype(np.float64) @ kernel + bias
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_predictions_during_training_use_one_complete_parameter_set(model, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    for i in range(60):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])
    probe = model.bottleneck(colour_image(1, rng))
    frame = colour_image(2, rng)

    # Every parameter set training publishes, in order.
    history = [model.parameters()]
    real_step = model._head._step

    def recording_step(snapshot, batch, *rest):
        loss = real_step(snapshot, batch, *rest)
        history.append(model.parameters())
        return loss

    monkeypatch.setattr(model._head, "_step", recording_step)

    done = threading.Event()
    seen: list[np.ndarray] = []
    errors: list[BaseException] = []

    def predict_loop() -> None:
        try:
            while not done.is_set():
                scores = {p.class_name: p.confidence for p in model.predict_bottleneck(probe)}
                seen.append(np.array([scores[c] for c in model.classes]))
                model.predict(frame)  # the base model path too
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    thread = threading.Thread(target=predict_loop)
    thread.start()
    epochs, before = 0, len(seen)
    try:
        # Train until the other thread has classified often enough; on a busy machine it may
        # get little time, so the amount of training adapts rather than being fixed.
        while (len(seen) - before < 40 or epochs < 20) and epochs < MAX_EPOCHS and not errors:
            model.train(10)
            epochs += 10
    finally:
        done.set()
        thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive(), "predict deadlocked against train"
    assert not errors, errors
    assert len(history) == 1 + epochs * 3
    assert len(seen) - before >= 40

    expected = np.array([_softmax(probe, *params) for params in history])
    for scores in seen:
        # A torn set (kernel of one step, bias of another) would match no published set.
        distance = np.abs(expected - scores).max(axis=1).min()
        assert distance < 1e-4
    # The predictions really moved with training: they were not all made with one set.
    distinct = {int(np.abs(expected - s).max(axis=1).argmin()) for s in seen}
    assert len(distinct) > 1


def test_samples_saves_and_predictions_while_training_do_not_deadlock(model, tmp_path) -> None:
    rng = np.random.default_rng(1)
    for i in range(40):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])
    frames = [colour_image(i % 4, rng) for i in range(8)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                while not stop.is_set():
                    work()
            except BaseException as err:  # noqa: BLE001
                errors.append(err)

        return threading.Thread(target=run)

    workers = [
        guarded(lambda: model.predict(frames[0])),
        guarded(lambda: model.add_sample(frames[1], "B")),
        guarded(lambda: model.save(tmp_path / "state.npz")),
        guarded(lambda: model.samples()),
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in range(3):
            model.train(2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(JOIN_TIMEOUT)
    assert not any(worker.is_alive() for worker in workers), "a worker deadlocked"
    assert not errors, errors
    assert model.samples()["B"] > 10
    model.load(tmp_path / "state.npz")  # whatever save won last is a complete, loadable state
