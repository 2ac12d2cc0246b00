"""fit (2 epochs, ``last.ckpt`` each epoch) → validate → test → a new Trainer resuming from
``last.ckpt`` for a 3rd epoch, into one run, under ``strategy="ddp"`` on CPU. Each rank writes
what Lightning handed a recording logger beside distlog's to OUT/rank<r>.json.

``--crash-at N``: the resumed fit raises as global step N begins (before the 3rd epoch's
checkpoint), and a third Trainer resumes from the same ``last.ckpt`` again; the rows Lightning
handed the crashed fit are ``crashed`` (``[first, end)`` of ``rows``) in the output.

    python lightning_resume_evals.py ROOT OUT --devices 2 [--crash-at 15]
"""

import argparse
import json
import os
import sys

import torch
import lightning.pytorch as pl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from support.lightning_oracle import Recording  # noqa: E402

from distlog.integrations.lightning import DistlogLogger  # noqa: E402


class Ranked(pl.LightningModule):
    """Values that differ per rank, so each row is a mean over ranks."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        self.log("loss", float(self.global_step + self.global_rank))
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val", 10.0 * (self.current_epoch + 1) + self.global_rank, on_epoch=True)

    def test_step(self, batch, batch_idx):
        self.log("tst", 100.0 + self.global_rank, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--crash-at", type=int)
    a = p.parse_args()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=2)
    rec = Recording()

    class Crash(pl.Callback):
        def on_train_batch_start(self, trainer, *args):
            if trainer.global_step == a.crash_at:
                raise RuntimeError(f"crashed at global step {a.crash_at}")

    def trainer(logger, crash=False, **kw):
        every_epoch = pl.callbacks.ModelCheckpoint(every_n_epochs=1, save_last=True)
        return pl.Trainer(accelerator="cpu", devices=a.devices, strategy="ddp" if a.devices > 1 else "auto",
                          logger=[logger, rec], callbacks=[logger.callback, every_epoch, *([Crash()] if crash else [])],
                          log_every_n_steps=1,
                          num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
                          use_distributed_sampler=False, **kw)

    logger = DistlogLogger(a.root, name="lit", version="evals", flush_timeout=60)
    first = trainer(logger, max_epochs=2)
    model = Ranked()
    first.fit(model, data, data)
    first.validate(model, data)
    first.test(model, data)
    last = os.path.join(logger.log_dir, "checkpoints", "last.ckpt")
    crashed = None
    if a.crash_at is not None:
        logger = DistlogLogger(a.root, name="lit", version="evals", flush_timeout=60)
        first_row = len(rec.rows)
        try:
            trainer(logger, crash=True, max_epochs=3).fit(Ranked(), data, data, ckpt_path=last)
            raise SystemExit("the resumed fit did not crash")
        except RuntimeError as e:
            assert "crashed at global step" in str(e), e
        crashed = [first_row, len(rec.rows)]
    logger = DistlogLogger(a.root, name="lit", version="evals", flush_timeout=60)
    second = trainer(logger, max_epochs=3)
    second.fit(Ranked(), data, data, ckpt_path=last)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"rank{second.global_rank}.json"), "w") as f:
        json.dump({"rows": rec.rows, "world": second.world_size, "crashed": crashed}, f)


if __name__ == "__main__":
    main()
