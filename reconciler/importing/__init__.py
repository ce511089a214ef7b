"""`reconciler import`: which pins the registry implies (from_registry, pure) and writing them as
files that validate (files)."""
