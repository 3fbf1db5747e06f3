"""`make bench`: feedring's benchmark. Figures are ratios to baselines measured in the same run."""
