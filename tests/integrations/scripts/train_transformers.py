"""A small Hugging Face Trainer script: train with evaluation and checkpoints each
epoch, then evaluate. ``--explicit`` adds otel-tracker's callback by hand."""

import argparse

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

parser = argparse.ArgumentParser()
parser.add_argument("--explicit", action="store_true")
parser.add_argument("--fail-at-call", type=int, default=-1)
args = parser.parse_args()


class Pairs(Dataset):
    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = self.x.sum(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class Regressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    calls = 0

    def forward(self, x, labels=None):
        Regressor.calls += 1
        if Regressor.calls == args.fail_at_call:
            raise RuntimeError("loss diverged")
        out = self.net(x).squeeze(-1)
        loss = torch.nn.functional.mse_loss(out, labels) if labels is not None else None
        return {"loss": loss, "logits": out}


training = TrainingArguments(
    output_dir="hf_out",
    num_train_epochs=2,
    per_device_train_batch_size=16,
    learning_rate=0.05,
    logging_steps=4,
    eval_strategy="epoch",
    save_strategy="epoch",
    load_best_model_at_end=True,
    metric_for_best_model="eval_loss",
    greater_is_better=False,
    report_to=[],
    use_cpu=True,
    hub_token="hf_hunter2_token",
)
callbacks = []
if args.explicit:
    from otel_tracker.integrations.transformers import OtelTrackerCallback

    callbacks.append(OtelTrackerCallback())
trainer = Trainer(
    model=Regressor(),
    args=training,
    train_dataset=Pairs(128),
    eval_dataset=Pairs(32),
    callbacks=callbacks,
)
trainer.train()
print(trainer.evaluate())
