"""User insight: profiles, segments, explanations and anomaly (bot and fraud) scores over the behaviour model."""
