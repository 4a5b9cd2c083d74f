"""policy: next-best-action (bandits, RL, uplift) and the models off-policy evaluation needs."""
