"""An ordinary PyTorch Lightning script: it never mentions otel-tracker.

    otel-tracker run --auto -- python examples/lightning_train.py --epochs 5

makes ``fit`` and ``test`` its steps, with batches as progress, ``self.log`` values as
series, the hyperparameters as params and the checkpoints as artifacts (needs
``pip install lightning``; runs on the CPU in seconds).
"""

import argparse

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, index):
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, index):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, index):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(4096, 8)
    y = x.sum(1, keepdim=True)
    train = DataLoader(TensorDataset(x[:3072], y[:3072]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x[3072:], y[3072:]), batch_size=256)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        default_root_dir="lightning_out",
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(monitor="val_loss")],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Regressor(lr=args.lr)
    trainer.fit(model, train, val)
    trainer.test(model, val)


if __name__ == "__main__":
    main()
