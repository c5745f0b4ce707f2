"""A small Lightning training script as users write it: fit with validation and a
checkpoint callback, then test. ``--explicit`` adds otel-tracker's callback by hand;
without it the script never mentions otel-tracker (``run --auto`` attaches it)."""

import argparse
import importlib

import torch
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--package", default="lightning.pytorch")
parser.add_argument("--explicit", action="store_true")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--fail-at-step", type=int, default=-1)
parser.add_argument("--validate", action="store_true")
args = parser.parse_args()
pl = importlib.import_module(args.package)


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, index):
        if self.global_step == args.fail_at_step:
            raise RuntimeError("loss diverged")
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, index):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, index):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


torch.manual_seed(0)
x = torch.randn(256, 4)
y = x.sum(1, keepdim=True)


def loader():
    return DataLoader(TensorDataset(x, y), batch_size=32)


callbacks = [pl.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)]
if args.explicit:
    module = "pytorch_lightning" if args.package == "pytorch_lightning" else "lightning"
    integration = importlib.import_module(f"otel_tracker.integrations.{module}")
    callbacks.append(integration.OtelTrackerCallback())
trainer = pl.Trainer(
    max_epochs=args.epochs,
    log_every_n_steps=2,
    accelerator="cpu",
    default_root_dir="lightning_out",
    enable_model_summary=False,
    callbacks=callbacks,
)
model = Regressor()
trainer.fit(model, loader(), loader())
trainer.test(model, loader())
if args.validate:
    trainer.validate(model, loader())
