"""Trainer: learns a deterministic pattern, resumes exactly, stops when asked, strict configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from shopformer.data.sequences import SequenceArrays
from shopformer.models.config import ModelConfig
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train import TrainConfig, Trainer
from shopformer.train.batches import evaluation_cases, training_windows
from shopformer.train.trainer import validation_metrics

N_ITEMS = 24  # real items 2..23


def cyclic_sequences(n_users: int = 200, seed: int = 0) -> list[list[int]]:
    """Next item = current + 1, wrapping from the last real item back to the first."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_users):
        start, length = int(rng.integers(0, N_ITEMS - 2)), int(rng.integers(4, 14))
        sequences.append([2 + (start + k) % (N_ITEMS - 2) for k in range(length)])
    return sequences


def splits(sequences):
    train = SequenceArrays.from_lists([s[:-2] for s in sequences])
    valid = SequenceArrays.from_lists([s[:-1] for s in sequences])
    return train, valid, SequenceArrays.from_lists(sequences)


def model_config(**overrides) -> ModelConfig:
    values = {"dim": 16, "layers": 1, "heads": 1, "max_len": 6, "dropout": 0.1, "attention_dropout": 0.0,
              "use_text": False, "use_attributes": False, "use_price": False}  # ids only unless a test adds features
    return ModelConfig(**(values | overrides))


def train_config(**overrides) -> TrainConfig:
    values = {"epochs": 15, "batch_size": 32, "lr": 1e-2, "warmup_steps": 5, "progress": False, "num_threads": 1}
    return TrainConfig(**(values | overrides))


def fit(model_overrides=None, train_overrides=None, **trainer_kwargs):
    torch.manual_seed(0)
    model = BehaviourTransformer(model_config(**(model_overrides or {})), N_ITEMS)
    train, valid, test = splits(cyclic_sequences())
    trainer = Trainer(model, train_config(**(train_overrides or {})), **trainer_kwargs).fit(train, valid)
    return model, trainer, test


def test_windows_cover_every_target_once_and_long_users_get_earlier_windows():
    sequences = SequenceArrays.from_lists([[2, 3, 4, 5, 6, 7, 8], [2, 3], [4]])
    starts, ends = training_windows(sequences, window=4)
    windows = sorted((int(s), int(e)) for s, e in zip(starts, ends))
    assert windows == [(0, 4), (3, 7), (7, 9)]  # the single-event user has nothing to predict
    targets = [t for s, e in windows for t in range(s + 1, e)]
    assert sorted(targets) == [1, 2, 3, 4, 5, 6, 8]  # every event after a user's first, once


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_trainer_learns_a_deterministic_next_item_pattern(objective):
    epochs = 15 if objective == "causal" else 30
    model, trainer, test = fit({"objective": objective}, {"epochs": epochs})
    losses = [m["loss"] for m in trainer.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert validation_metrics(model, test)["hr@10"] > 0.9


def test_sampled_loss_learns_the_pattern_too():
    model, trainer, test = fit({"loss": "sampled", "negatives": 8})
    assert validation_metrics(model, test)["hr@10"] > 0.9


def test_resumed_training_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight, _, _ = fit(train_overrides={"epochs": 4})
    path = tmp_path / "run.pt"
    fit(train_overrides={"epochs": 2}, checkpoint_path=path)
    torch.manual_seed(123)  # a different fresh start must not matter: everything comes from the file
    resumed = BehaviourTransformer(model_config(), N_ITEMS)
    train, valid, _ = splits(cyclic_sequences())
    Trainer(resumed, train_config(epochs=4), checkpoint_path=path).fit(train, valid, resume=True)
    for name, tensor in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=1e-6, msg=name)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 4 and len(state["history"]) == 4


def test_callback_stops_training_and_metrics_are_written_as_json_lines(tmp_path):
    seen = []
    metrics_path = tmp_path / "metrics.jsonl"
    _, trainer, _ = fit(callbacks=[lambda m: seen.append(m) or m["epoch"] == 2], metrics_path=metrics_path)
    assert [m["epoch"] for m in seen] == [1, 2]
    lines = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    assert {"epoch", "loss", "valid_ndcg@10", "valid_hr@10", "seconds"} <= set(lines[-1])


def test_best_checkpoint_is_restored():
    model, trainer, _ = fit(train_overrides={"epochs": 6})
    _, valid, _ = splits(cyclic_sequences())
    assert validation_metrics(model, valid)["ndcg@10"] == pytest.approx(trainer.best_score_)


def test_evaluation_cases_predict_each_users_last_item_from_at_most_max_len_events():
    sequences = SequenceArrays.from_lists([[2, 3, 4, 5, 6], [7], [8, 9]])
    starts, ends, targets = evaluation_cases(sequences, history=3)
    assert targets.tolist() == [6, 9] and starts.tolist() == [1, 6] and ends.tolist() == [4, 7]


@pytest.mark.parametrize("config_class", [ModelConfig, TrainConfig])
def test_configs_reject_unknown_keys(config_class):
    with pytest.raises(ValidationError, match="layer"):
        config_class(layer=4)


def test_model_config_checks_heads_divide_width():
    with pytest.raises(ValidationError, match="multiple of heads"):
        ModelConfig(dim=30, heads=4)


def test_filtering_seen_items_only_removes_history_items_never_the_target():
    torch.manual_seed(0)
    model = BehaviourTransformer(model_config(), 12).eval()
    # User 1's target (5) is also in its history: a repeat stays rankable.
    sequences = SequenceArrays.from_lists([[2, 3, 4], [5, 6, 5]])
    with torch.no_grad():
        hidden = model.next_item_hidden(torch.tensor([[2, 3], [5, 6]]))
        scores = model.scores(hidden)
    # Expected ranks by hand: filtering removes the history items that outscore the target.
    plain = validation_metrics(model, sequences)
    filtered = validation_metrics(model, sequences, filter_seen=True)
    ranks_plain = [(scores[0] >= scores[0, 4]).sum().item(), (scores[1] >= scores[1, 5]).sum().item()]
    ranks_filtered = [
        (scores[0] >= scores[0, 4]).sum().item() - int(scores[0, 2] >= scores[0, 4]) - int(scores[0, 3] >= scores[0, 4]),
        (scores[1] >= scores[1, 5]).sum().item() - int(scores[1, 6] >= scores[1, 5]),
    ]
    ndcg = lambda ranks: float(np.mean([1 / np.log2(r + 1) if r <= 10 else 0.0 for r in ranks]))  # noqa: E731
    assert plain["ndcg@10"] == pytest.approx(ndcg(ranks_plain))
    assert filtered["ndcg@10"] == pytest.approx(ndcg(ranks_filtered))


def test_sequence_slicing_keeps_types_and_times_aligned():
    arrays = SequenceArrays(np.array([0, 3, 3, 5]), np.array([2, 3, 4, 5, 6]), np.array([2, 2, 3, 2, 3]), np.array([10, 20, 30, 40, 50]))
    assert arrays.drop_last(1).items.tolist() == [2, 3, 5] and arrays.drop_last(1).lengths.tolist() == [2, 0, 1]
    last = arrays.keep_last(1)
    assert last.items.tolist() == [4, 6] and last.timestamps.tolist() == [30, 50] and last.event_types.tolist() == [3, 3]
    picked = arrays.rows([2, 0])
    assert picked.items.tolist() == [5, 6, 2, 3, 4] and picked.offsets.tolist() == [0, 2, 5]
    histories, targets = arrays.last_item_cases()  # the user without events has no case
    assert histories.items.tolist() == [2, 3, 5] and histories.offsets.tolist() == [0, 2, 3]
    assert targets.tolist() == [4, 6]
