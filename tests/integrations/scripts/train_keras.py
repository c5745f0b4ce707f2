"""A small Keras 3 script: fit with a validation split, evaluate, predict.
``--explicit`` adds otel-tracker's callback by hand."""

import argparse

import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--explicit", action="store_true")
parser.add_argument("--fail-at-epoch", type=int, default=-1)
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = x.sum(1, keepdims=True)
model = keras.Sequential(
    [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
)
model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])


class Diverge(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == args.fail_at_epoch:
            raise RuntimeError("loss diverged")


callbacks = [Diverge()]
if args.explicit:
    from otel_tracker.integrations.keras import OtelTrackerCallback

    callbacks.append(OtelTrackerCallback())
model.fit(x, y, epochs=3, batch_size=32, validation_split=0.25, verbose=2, callbacks=callbacks)
print(model.evaluate(x, y, verbose=0, callbacks=callbacks))
model.predict(x[:64], verbose=0, callbacks=callbacks)
