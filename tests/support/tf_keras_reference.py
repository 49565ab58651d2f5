"""Train the softmax head in Keras on given bottlenecks (runs in the converter environment).

Usage: python tf_keras_reference.py DATA.npz EPOCHS BATCH SEED

DATA.npz holds train_x, train_y (one-hot), test_x, test_y (class indices), kernel and bias (the
runtime's initial parameters) and adam = [learning_rate, beta1, beta2, eps]. Prints JSON with the
held-out accuracy and the last epoch's training loss: the reference the runtime must match.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np


def main(data_path: str, epochs: int, batch: int, seed: int) -> None:
    """Fit Dense(C, softmax) with Adam like the bundle's and print the held-out accuracy."""
    data = np.load(data_path)
    keras.utils.set_random_seed(seed)
    features, classes = data["kernel"].shape
    head = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes, "softmax")])
    head.layers[-1].set_weights([data["kernel"], data["bias"]])
    lr, beta1, beta2, eps = (float(v) for v in data["adam"])
    head.compile(
        optimizer=keras.optimizers.Adam(lr, beta_1=beta1, beta_2=beta2, epsilon=eps),
        loss="categorical_crossentropy",
    )
    history = head.fit(
        data["train_x"], data["train_y"], batch_size=batch, epochs=epochs, shuffle=True, verbose=0
    )
    predicted = head.predict(data["test_x"], verbose=0).argmax(axis=1)
    print(json.dumps({
        "accuracy": float(np.mean(predicted == data["test_y"])),
        "loss": float(history.history["loss"][-1]),
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
