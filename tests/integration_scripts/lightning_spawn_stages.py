"""fit, then validate on the same Trainer, under strategy="ddp_spawn" (CPU, gloo): ROOT DEVICES."""
import sys, logging, warnings
import torch
import lightning.pytorch as pl
from distlog.integrations.lightning import DistlogLogger


class M(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, i):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, i):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean(), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(n):
    ds = torch.utils.data.TensorDataset(torch.arange(2.0 * n).reshape(n, 2))
    return torch.utils.data.DataLoader(ds, batch_size=1)


if __name__ == "__main__":
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    root, devices = sys.argv[1], int(sys.argv[2])
    logger = DistlogLogger(root, name="e", version="r")
    trainer = pl.Trainer(logger=logger, callbacks=[logger.callback], accelerator="cpu", devices=devices,
                         strategy="ddp_spawn", max_epochs=1, log_every_n_steps=1, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(M(), data(3), data(2))
    trainer.validate(M(), data(2))
