"""Peer implementations (PyTorch, torchdiffeq) that the benchmarks time ocp_learn against."""
