"""Attribution over one history: occlusion is the exact leave-one-out drop, integrated gradients add
up to the score change, curves follow orderings, and the sentence names what a manager reads."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.insight.attribution import (
    banzhaf,
    deletion_scores,
    insertion_scores,
    integrated_gradients,
    occlusion,
    recency_order,
    weight_order,
)
from shopformer.insight.explain import (
    EventInfo,
    attribute_groups,
    head_gradients,
    history_variants,
    next_item_gradients,
    next_item_scorer,
    sentence,
)
from shopformer.models.config import ModelConfig
from shopformer.models.heads import TaskHead
from shopformer.models.transformer import BehaviourTransformer

N_ITEMS, N_TYPES = 14, 6
TUESDAY = int(datetime(2024, 3, 5, 10, tzinfo=UTC).timestamp())


class TinyModel:
    """The `BehaviourModel` members explanations use, over an untrained (seeded) Transformer."""

    max_len, num_threads = 10, 1

    def __init__(self, objective: str = "causal") -> None:
        torch.manual_seed(0)
        config = ModelConfig(dim=8, layers=1, max_len=self.max_len, use_text=False, use_attributes=False,
                             use_price=False, dropout=0.0, attention_dropout=0.0, objective=objective)
        self.transformer = BehaviourTransformer(config, N_ITEMS, N_TYPES).eval()

    def score_histories(self, histories: SequenceArrays) -> torch.Tensor:
        return self.transformer.score_histories(histories)


def _history(items: list[int]) -> SequenceArrays:
    n = len(items)
    return SequenceArrays(np.array([0, n]), np.array(items), np.array([2 + j % 3 for j in range(n)]),
                          TUESDAY + 600 * np.arange(n))


def test_occlusion_weights_are_the_exact_score_drop_of_leaving_each_event_out():
    model, history = TinyModel(), _history([3, 5, 7, 9, 11])
    scorer = next_item_scorer(model, history, target=4)
    attribution = occlusion(scorer, 5)
    assert attribution.weights.shape == (5,) and attribution.weights.dtype == np.float64
    full = torch.log_softmax(model.score_histories(history), 1)[0, 4].item()
    assert attribution.score == pytest.approx(full, abs=1e-5)
    for j in range(5):
        keep = np.arange(5) != j
        without = SequenceArrays(np.array([0, 4]), history.items[keep], history.event_types[keep], history.timestamps[keep])
        dropped = full - torch.log_softmax(model.score_histories(without), 1)[0, 4].item()
        assert attribution.weights[j] == pytest.approx(dropped, abs=1e-5)


def test_weights_are_signed_and_groups_leave_their_events_out_together():
    def scorer(masks: np.ndarray) -> np.ndarray:  # event 0 helps, event 1 hurts, event 2 helps only with 0
        m = masks.astype(float)
        return 2 * m[:, 0] - m[:, 1] + 0.5 * m[:, 0] * m[:, 2]

    attribution = occlusion(scorer, 3, {"brand:Acme": np.array([True, False, True])})
    assert attribution.weights == pytest.approx([2.5, -1.0, 0.5])
    assert attribution.groups == {"brand:Acme": pytest.approx(2.5)}
    order = weight_order(attribution.weights)
    assert order.tolist() == [0, 2, 1]
    assert deletion_scores(scorer, order, ks=(1,))[0] < deletion_scores(scorer, recency_order(3), ks=(1,))[0]
    assert insertion_scores(scorer, order, ks=(0, 1)).tolist() == [0.0, 2.0]


def test_banzhaf_weights_average_each_events_effect_over_partial_histories():
    def scorer(masks: np.ndarray) -> np.ndarray:  # events 0 and 1 stand in for each other; 2 hurts
        m = masks.astype(float)
        return np.maximum(m[:, 0], m[:, 1]) - 0.5 * m[:, 2]

    exact = banzhaf(scorer, 3)  # 8 subsets: enumerated, so the values are exact
    assert exact.weights == pytest.approx([0.5, 0.5, -0.5]) and exact.score == 0.5
    assert occlusion(scorer, 3).weights == pytest.approx([0.0, 0.0, -0.5])  # each copy looks dispensable
    sampled = banzhaf(scorer, 12, samples=256, seed=3)
    assert sampled.weights[:2] == pytest.approx([0.5, 0.5], abs=0.15) and np.abs(sampled.weights[3:]).max() < 0.15
    assert np.array_equal(sampled.weights, banzhaf(scorer, 12, samples=256, seed=3).weights)  # same request, same answer


def test_a_one_event_history_is_compared_with_the_placeholder_history():
    model, history = TinyModel(), _history([6])
    attribution = occlusion(next_item_scorer(model, history, target=8), 1)
    placeholder = history_variants(history, np.zeros((1, 1), dtype=bool))
    assert placeholder.items.tolist() == [1] and placeholder.timestamps.tolist() == [TUESDAY]
    expected = attribution.score - torch.log_softmax(model.score_histories(placeholder), 1)[0, 8].item()
    assert attribution.weights == pytest.approx([expected], abs=1e-5)


@pytest.mark.parametrize(("objective", "baseline"), [("causal", "zero"), ("masked", "zero"), ("causal", "unknown")])
def test_integrated_gradients_add_up_to_the_score_change_from_the_baseline(objective, baseline):
    model, history = TinyModel(objective), _history([3, 5, 7, 9])
    attribution = next_item_gradients(model, history, target=6, steps=128, baseline=baseline)
    assert attribution.weights.shape == (4,) and np.all(attribution.weights != 0)
    assert attribution.score == pytest.approx(occlusion(next_item_scorer(model, history, 6), 4).score, abs=1e-4)
    assert attribution.weights.sum() == pytest.approx(attribution.score - attribution.baseline, rel=0.02, abs=1e-3)


def test_integrated_gradients_of_a_task_head_add_up_to_its_probability_change():
    model, history = TinyModel(), _history(list(range(2, 14)))
    torch.manual_seed(1)
    head = TaskHead(16, 2, 1, item_dim=8, n_items=N_ITEMS).eval()
    recent = history.keep_last(model.max_len)
    attribution = head_gradients(model.transformer, head, recent, torch.tensor([[0.3, -1.0]]),
                                 session_items=torch.tensor([[11, 12, 13]]), candidate=5, steps=128)
    assert 0 < attribution.score < 1 and attribution.weights.shape == (10,)
    assert attribution.weights.sum() == pytest.approx(attribution.score - attribution.baseline, rel=0.02, abs=1e-4)
    with pytest.raises(RuntimeError, match="never ran"):
        integrated_gradients(model.transformer, lambda b: torch.zeros(b, requires_grad=True), 3)


def _event(j: int, title: str, kind: str, brand: str | None = None, tags: tuple[str, ...] = ()) -> EventInfo:
    return EventInfo(j, f"i{j}", kind, TUESDAY + j * 86_400, title, "Home > Kitchen > Knives", brand, tags)


def test_sentence_names_the_item_the_event_type_the_weekday_and_a_shared_brand():
    events = [_event(0, "Oakhearth Paring Knife", "view", "Oakhearth"), _event(1, "Kitchara Bread Knife", "cart", tags=("steel",)),
              _event(2, "Oakhearth Chef's Knife", "view", "Oakhearth", ("steel",))]
    members = attribute_groups(events)
    # "knife" is in every title: the same events as the category, so no group of its own
    assert set(members) == {"brand:Oakhearth", "category:Home > Kitchen > Knives", "tag:steel"}
    text = sentence("Recommended Oakhearth Santoku", events, np.array([0.1, 0.9, 0.2]), {"brand:Oakhearth": 0.3}, members)
    assert text == "Recommended Oakhearth Santoku because you carted Kitchara Bread Knife on Wednesday and viewed" \
                   " Oakhearth Chef's Knife on Thursday."
    text = sentence("Recommended Oakhearth Santoku", events, np.array([0.4, 0.3, 0.2]), {"brand:Oakhearth": 1.5}, members)
    assert "viewed two items of brand Oakhearth" in text and "carted Kitchara Bread Knife on Wednesday" in text
    one_that_matters = sentence("Recommended Oakhearth Santoku", events, np.array([1.0, 0.3, 0.0]), {"brand:Oakhearth": 1.1},
                                members)
    assert "brand" not in one_that_matters and "viewed Oakhearth Paring Knife on Tuesday and carted" in one_that_matters
    lowered = sentence("Churn risk is 30%", events, np.array([-0.2, 0.0, -0.05]), {}, members,
                       because="mostly because", lowered=True)
    assert lowered == "Churn risk is 30%: no single event of yours points to it; that you viewed Oakhearth Paring Knife" \
                      " on Tuesday lowers it."
