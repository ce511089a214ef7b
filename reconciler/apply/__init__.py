"""The apply machinery, under `api.apply`: the options of one apply (options), the per-model
leases (lease), the refusals before any write (guards), carrying out a plan step by step and model
by model (executor), what happens after a model's steps (model_run: verify, repair, record), and
what is recorded once a model's steps land (recording)."""
