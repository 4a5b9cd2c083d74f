"""Running Shopformer beyond one call: batch scoring of every user, streamed to files."""
