"""How changes get from a commit to a cluster: plan diffs, ephemeral stacks, smoke tests."""
