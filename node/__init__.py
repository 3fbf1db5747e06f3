"""The storage node: owns partitions of the ring and keeps them in one LevelDB."""
