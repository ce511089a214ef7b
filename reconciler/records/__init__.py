"""What the registry remembers of our applies: audit records on versions (audit), the per-model
state tag with applied commit, ownership and lease (bookkeeping), and a model's promotion history
matched against git (history)."""
