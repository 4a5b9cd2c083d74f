"""Data-parallel helpers: each rank's share of a batch, loss weights that give the global batch's
gradient in a real two-process gloo group, and the checks on a torchrun environment."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.train.batches import window_batches
from shopformer.train.config import TrainConfig
from shopformer.train.distributed import Ranks, joined_process_group, process_ranks


def _sequences(lengths: list[int]) -> SequenceArrays:
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    items = np.arange(2, 2 + offsets[-1], dtype=np.int64)
    return SequenceArrays(items=items, offsets=offsets)


def _windows(n: int, batch_size: int, rank: int, world_size: int, seed: int = 4) -> list[tuple[list[list[int]], bool]]:
    sequences = _sequences([2 + i % 5 for i in range(n)])
    starts, ends = sequences.offsets[:-1], sequences.offsets[1:]
    batches = window_batches(sequences, starts, ends, batch_size, np.random.default_rng(seed), rank=rank, world_size=world_size)
    return [([sorted(r for r in row.tolist() if r) for row in batch.items], own) for batch, own in batches]


def test_the_ranks_shares_make_up_the_batches_of_one_process():
    one = _windows(23, 8, 0, 1)
    shares = [_windows(23, 8, rank, 3) for rank in range(3)]
    assert all(own for _, own in one) and [len(s) for s in shares] == [len(one)] * 3
    for step, (rows, _) in enumerate(one):
        parts = [shares[rank][step][0] for rank in range(3)]
        assert sorted(sum(parts, [])) == sorted(rows)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # as even as the batch allows


def test_a_batch_smaller_than_the_world_gives_the_rank_without_windows_a_stand_in():
    one = _windows(9, 8, 0, 1)  # batches of 8 and 1 window
    short = [step for step, (rows, _) in enumerate(one) if len(rows) == 1][0]
    rows, own = _windows(9, 8, 1, 2)[short]
    assert not own and rows == one[short][0]
    assert _windows(9, 8, 0, 2)[short][1]


def test_one_process_is_rank_0_of_1_and_every_collective_is_the_identity():
    ranks = process_ranks()
    assert (ranks.rank, ranks.world_size, ranks.is_main, ranks.distributed) == (0, 1, True, False)
    loss = torch.tensor(2.5, requires_grad=True)
    scaled, part = ranks.weighted(loss, 7)
    assert scaled is loss and part == 2.5
    model = torch.nn.Linear(2, 2)
    assert ranks.wrap(model) is model and ranks.sum(3.0) == 3.0 and ranks.from_main({"a": 1}) == {"a": 1}


def test_default_threads_split_the_cores_between_the_ranks_of_a_machine():
    ranks = Ranks(rank=1, world_size=4, local_world_size=2)
    assert ranks.threads(TrainConfig.model_construct(_fields_set=set(), num_threads=8)) == 4
    assert ranks.threads(TrainConfig(num_threads=3)) == 3  # an explicit setting wins
    assert Ranks(0, 4, 8).threads(TrainConfig.model_construct(_fields_set=set(), num_threads=2)) == 1


def test_a_world_size_without_torchrun_variables_is_refused(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="start data-parallel runs with torchrun"):
        with joined_process_group():
            pass
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE must be a whole number"):
        with joined_process_group():
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(7, 3, generator=generator), torch.randn(7, 1, generator=generator)


def _rank_gradients(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    ranks = process_ranks()
    model = _model()
    wrapped = ranks.wrap(model)
    x, y = _data()
    rows = torch.arange(len(x))[rank::world_size]  # 4 rows on rank 0, 3 on rank 1: unequal shares
    loss, part = ranks.weighted(((wrapped(x[rows]) - y[rows]) ** 2).mean(), len(rows))
    loss.backward()
    if rank == 0:
        torch.save({"grads": [p.grad for p in model.parameters()], "loss": ranks.sum(part)}, out)
    else:
        ranks.sum(part)
    dist.destroy_process_group()


def test_weighted_losses_give_the_gradient_of_the_global_batch(tmp_path):
    torch.set_num_threads(1)
    out = str(tmp_path / "grads.pt")
    mp.spawn(_rank_gradients, args=(2, _free_port(), out), nprocs=2)
    model = _model()
    x, y = _data()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    shared = torch.load(out)
    assert shared["loss"] == pytest.approx(float(loss.detach()), rel=1e-6)
    for expected, got in zip([p.grad for p in model.parameters()], shared["grads"]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
