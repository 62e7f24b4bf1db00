"""``make demo`` stages: each ``run_demo_stage(root, force)`` writes its outputs under root and returns a summary."""
