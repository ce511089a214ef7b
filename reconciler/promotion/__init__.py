"""`reconciler promote`: choose the version to pin in an environment and edit its pin file."""
