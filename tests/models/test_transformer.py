"""Behaviour Transformer: shapes, masking, padding invariance, side features and cold start."""

from __future__ import annotations

import pytest
import torch

from shopformer.errors import ConfigError
from shopformer.models.config import ModelConfig
from shopformer.models.transformer import (
    BehaviourTransformer,
    ItemEncoder,
    time_gap_buckets,
)

N_ITEMS = 30


def small_config(**overrides) -> ModelConfig:
    values = {"dim": 16, "layers": 2, "heads": 2, "max_len": 8, "dropout": 0.0, "attention_dropout": 0.0,
              "use_text": False, "use_attributes": False, "use_price": False}  # ids only unless a test adds features
    return ModelConfig(**(values | overrides))


def make_model(**overrides) -> BehaviourTransformer:
    torch.manual_seed(0)
    return BehaviourTransformer(small_config(**overrides), N_ITEMS, n_event_types=4).eval()


def test_shapes_of_hidden_states_and_scores():
    model = make_model()
    items = torch.randint(2, N_ITEMS, (3, 8))
    hidden = model(items)
    assert hidden.shape == (3, 8, 16)
    scores = model.scores(model.next_item_hidden(items))
    assert scores.shape == (3, N_ITEMS)
    assert torch.isinf(scores[:, :2]).all() and torch.isfinite(scores[:, 2:]).all()


def test_changing_a_future_item_leaves_earlier_outputs_unchanged():
    model = make_model()
    items = torch.randint(2, N_ITEMS, (2, 8))
    changed = items.clone()
    changed[:, 5] = (items[:, 5] - 2 + 1) % (N_ITEMS - 2) + 2
    before, after = model(items), model(changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_left_padding_does_not_change_the_outputs_of_real_positions():
    model = make_model()
    items = torch.randint(2, N_ITEMS, (1, 5))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), items], dim=1)
    torch.testing.assert_close(model(items), model(padded)[:, 3:])


def test_masked_mode_sees_both_sides_and_predicts_from_a_mask_slot():
    model = make_model(objective="masked")
    items = torch.randint(2, N_ITEMS, (2, 6))
    masked = torch.zeros_like(items, dtype=torch.bool)
    masked[:, 2] = True
    changed = items.clone()
    changed[:, 5] = (items[:, 5] - 2 + 1) % (N_ITEMS - 2) + 2
    # Bidirectional: a later item changes an earlier (masked) position's output.
    assert not torch.allclose(model(items, masked=masked)[:, 2], model(changed, masked=masked)[:, 2])
    assert model.next_item_hidden(torch.randint(2, N_ITEMS, (2, 8))).shape == (2, 16)


def test_causal_model_rejects_masked_positions():
    model = make_model()
    items = torch.randint(2, N_ITEMS, (1, 4))
    with pytest.raises(ValueError, match="causal"):
        model(items, masked=torch.ones_like(items, dtype=torch.bool))


def test_event_types_and_time_gaps_change_the_representation():
    model = make_model()
    items = torch.randint(2, N_ITEMS, (1, 4))
    plain = model(items)
    assert not torch.allclose(plain, model(items, event_types=torch.tensor([[2, 3, 2, 3]])))
    assert not torch.allclose(plain, model(items, timestamps=torch.tensor([[0, 10, 100_000, 100_001]])))


def test_time_gap_buckets_are_log_scaled_and_zero_without_a_previous_event():
    timestamps = torch.tensor([[0, 0, 5, 6, 8, 1_000_000]])
    valid = torch.tensor([[False, True, True, True, True, True]])
    assert time_gap_buckets(timestamps, valid, 8).tolist() == [[0, 0, 3, 2, 2, 7]]


def test_item_table_is_cached_in_eval_and_refreshed_after_training():
    model = make_model()
    with torch.no_grad():
        first = model.item_table()
        assert model.item_table() is first
    model.train()
    with torch.no_grad():
        model.item_encoder.id_embedding.weight.add_(1.0)
    model.eval()
    with torch.no_grad():
        assert not torch.equal(model.item_table(), first)


def test_item_table_survives_mode_switches_and_follows_updates_made_in_eval_mode():
    model = make_model()
    with torch.no_grad():
        first = model.item_table()
        model.eval()  # scoring calls switch to eval every time: that alone must not rebuild the table
        assert model.item_table() is first
        model.item_encoder.id_embedding.weight.add_(1.0)  # e.g. an optimiser step on a frozen-dropout model
        assert not torch.equal(model.item_table(), first)


def test_time_gap_buckets_of_a_batch_one_event_wide():
    buckets = time_gap_buckets(torch.tensor([[7], [9]]), torch.tensor([[True], [True]]), 8)
    assert buckets.tolist() == [[0], [0]]


def features(n_items: int = N_ITEMS):
    generator = torch.Generator().manual_seed(1)
    attribute_index = torch.randint(0, 5, (n_items, 3), generator=generator, dtype=torch.int32)
    price_bucket = torch.randint(0, 4, (n_items,), generator=generator, dtype=torch.int32)
    text = torch.randn(n_items, 12, generator=generator)
    has_text = torch.ones(n_items, dtype=torch.bool)
    return {"attribute_index": attribute_index, "price_bucket": price_bucket, "text": text, "has_text": has_text}


@pytest.mark.parametrize("fusion", ["sum", "gated"])
def test_model_with_all_side_features(fusion):
    config = small_config(use_text=True, use_attributes=True, use_price=True, fusion=fusion)
    model = BehaviourTransformer(config, N_ITEMS, **features()).eval()
    items = torch.randint(2, N_ITEMS, (2, 8))
    assert model.scores(model.next_item_hidden(items)).shape == (2, N_ITEMS)
    # Frozen features are inputs, not checkpoint content.
    assert not any(key.endswith(".text") for key in model.state_dict())


def test_switched_on_feature_that_is_missing_is_an_error():
    with pytest.raises(ConfigError, match="use_text"):
        BehaviourTransformer(small_config(use_text=True), N_ITEMS)


def test_ids_only_model_ignores_features_it_was_given():
    torch.manual_seed(0)
    with_features = BehaviourTransformer(small_config(), N_ITEMS, n_event_types=4, **features())
    assert set(with_features.state_dict()) == set(make_model().state_dict())


def test_cold_start_items_with_text_only_get_distinct_non_zero_vectors():
    text = torch.zeros(N_ITEMS, 12)
    text[10], text[11] = torch.randn(12), torch.randn(12)
    encoder = ItemEncoder(N_ITEMS, 16, text=text, has_text=text.abs().sum(1) > 0, item_norm=False)
    known = torch.ones(N_ITEMS, dtype=torch.bool)
    known[10:12] = False
    encoder.mark_known_items(known)
    vectors = encoder(torch.tensor([10, 11]))
    assert vectors.norm(dim=1).min() > 0
    assert not torch.allclose(vectors[0], vectors[1])
    # Their ids contribute nothing: the vector is the text projection alone.
    torch.testing.assert_close(vectors, encoder.text_projection(text[10:12]))
