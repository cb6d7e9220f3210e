"""Backends: each module registers impls; frameworks are imported inside the impls."""
