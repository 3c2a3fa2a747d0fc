"""Neural network architectures, each a small ``nn.Module`` built from a config dataclass
registered by name (see ``registry``)."""
