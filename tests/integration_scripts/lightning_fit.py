"""A tiny Lightning fit with DistlogLogger; each rank writes what it logged to OUT/rank<r>.json.

    python lightning_fit.py ROOT OUT --devices 2 --max-steps 6 [--version ID] [--ckpt PATH] [--val]

Values are a function of (rank, step), so a resumed fit must reproduce an uninterrupted one.
"""

import argparse
import json
import os
import sys

import torch

if "--package=pytorch_lightning" in sys.argv:  # the standalone package, imported first
    import pytorch_lightning as pl
else:
    import lightning.pytorch as pl

from distlog.integrations.lightning import DistlogLogger


def value(rank: int, step: int) -> float:
    return (rank + 1) * 10.0 + step * 0.5 + (rank * step) % 3


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.1, width: int = 4):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)
        self.seen: dict[str, dict[str, float]] = {}

    def _note(self, step: int, **values: float) -> None:
        self.seen.setdefault(str(step), {}).update(values)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = self.layer(x).pow(2).mean()
        step, rank = self.global_step, self.global_rank
        v = value(rank, step)
        # Lightning's own API, no sync_dist: distlog reduces every rank's value at its flush
        self.log("train/v", torch.tensor(v), on_step=True, on_epoch=False)
        # the direct pattern: collected on this rank at the current global step
        self.logger.experiment.metrics("train").collect(direct=v * 2)
        self._note(step, v=v, direct=v * 2)
        return loss

    def validation_step(self, batch, batch_idx):
        (x,) = batch
        v = float(self.global_rank + 1) + batch_idx
        self.log("val/v", torch.tensor(v), on_step=False, on_epoch=True)
        self.seen.setdefault("val", {}).setdefault(str(self.global_step), []).append(v)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--version")
    p.add_argument("--ckpt")
    p.add_argument("--val", action="store_true")
    p.add_argument("--log-checkpoints", action="store_true")
    p.add_argument("--package", default="lightning")
    a = p.parse_args()
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4))
    train = torch.utils.data.DataLoader(data, batch_size=2)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2)
    logger = DistlogLogger(a.root, name="lit", version=a.version, flush_every_n_steps=1,
                           log_checkpoints=a.log_checkpoints)
    ckpt = pl.callbacks.ModelCheckpoint(every_n_train_steps=2, save_top_k=-1)
    trainer = pl.Trainer(
        accelerator="cpu", devices=a.devices, strategy="ddp" if a.devices > 1 else "auto",
        max_steps=a.max_steps, logger=logger, callbacks=[logger.callback, ckpt],
        log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=2 if a.val else 0,
        val_check_interval=4 if a.val else None,
    )
    model = Tiny()
    trainer.fit(model, train, val if a.val else None, ckpt_path=a.ckpt)
    rank = trainer.global_rank
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"rank{rank}.json"), "w") as f:
        json.dump({"seen": model.seen, "run_id": logger.version, "log_dir": logger.log_dir,
                   "save_dir": logger.save_dir, "name": logger.name,
                   "ckpt_dir": ckpt.dirpath, "world": trainer.world_size,
                   "logger_base": DistlogLogger.__mro__[1].__module__}, f)


if __name__ == "__main__":
    sys.exit(main())
