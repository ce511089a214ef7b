"""A reference serving backend that follows the registry: `python -m serving --model NAME
(--stage STAGE | --alias ALIAS) --port PORT`.

It answers `GET /health` with what it serves ({"status", "model", "stage" or "alias", "version",
"run_id"}: the contract `reconciler verify` polls) and `POST /predict` with predictions for JSON
rows, and reloads when the stage or alias moves to another version. Its own package with its own
requirements (serving/requirements.txt): the reconciler never imports it.
"""
