"""Data-parallel training: the ranks of one process group (torchrun or Ray Train) step together.

Every rank builds the same global batches from the same seed and takes its share of each
(`window_batches`), so a step trains on the windows one process with the same `batch_size` would.
`DistributedDataParallel` averages the gradients; each rank's loss is first weighted by its share
of the step's targets, so the average is the gradient of the global batch's mean loss. Rank 0
validates, writes metrics and checkpoints and decides when to stop; the others wait for that
decision in a broadcast. In one process every collective here is the identity.

The loop's tensors live on the CPU and travel over gloo; where CUDA is present the group also
registers NCCL, which carries CUDA tensors (torch picks the backend from each tensor's device).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from shopformer.errors import ConfigError
from shopformer.train.config import TrainConfig

__all__ = ["Ranks", "joined_process_group", "process_ranks"]


class Ranks:
    """This process's place among data-parallel ranks; a lone process is rank 0 of 1."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_world_size: int = 1) -> None:
        self.rank, self.world_size, self.local_world_size = rank, world_size, local_world_size

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, writes files and decides when to stop."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def threads(self, config: TrainConfig) -> int:
        """Torch threads of this rank: the configured number, or by default the machine's cores
        split between the ranks on this machine (more would only fight over the same cores)."""
        if "num_threads" in config.model_fields_set:
            return config.num_threads
        return max(1, config.num_threads // self.local_world_size)

    def wrap(self, model: nn.Module) -> nn.Module:
        """`model` itself in one process, else wrapped so backward all-reduces its gradients."""
        if not self.distributed:
            return model
        # Buffers are frozen item features, the same on every rank: sending them every step is waste.
        return nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)

    def weighted(self, loss: Tensor, targets: int) -> tuple[Tensor, float]:
        """(`loss` scaled so the ranks' averaged gradients are those of the global batch's mean loss,
        this rank's part of that mean loss). `targets`: positions this rank's `loss` averages over."""
        if not self.distributed:
            return loss, float(loss.detach())
        total = self.sum(float(targets))
        # DistributedDataParallel divides the summed gradients by world_size; this undoes that and
        # weights each rank by its share of the targets instead.
        scale = targets * self.world_size / total
        return loss * scale, float(loss.detach()) * targets / total

    def sum(self, value: float) -> float:
        """`value` summed over the ranks."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item())

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (any picklable object; the others' own value is ignored)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def share_weights(self, model: nn.Module) -> None:
        """Rank 0's parameters and buffers copied into every rank's `model`, in place."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        """Waits until every rank got here (a CPU collective: the group's gloo side)."""
        if self.distributed:
            dist.all_reduce(torch.zeros(1))

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first, the others after it finished (e.g. writing shared files)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


def process_ranks() -> Ranks:
    """The ranks of the process group this process belongs to (set up by torchrun or Ray Train)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return Ranks()
    world_size = dist.get_world_size()
    return Ranks(dist.get_rank(), world_size, int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))


def _environment_world_size() -> int:
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be a whole number, got {value!r}") from None


@contextmanager
def joined_process_group() -> Iterator[Ranks]:
    """Joins the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT) for the block. A plain process, or one whose group is
    already up (a Ray Train worker), gets its ranks without a new group."""
    if dist.is_initialized() or _environment_world_size() <= 1:
        yield process_ranks()
        return
    missing = [name for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not: start data-parallel runs with torchrun")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend)
    try:
        yield process_ranks()
    finally:
        dist.destroy_process_group()
