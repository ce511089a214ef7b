"""Reading what git wants: strict YAML documents (documents), schema checks (schema_validation),
versions as written (versions), pin files and their edits (pinfile), environment settings with
their gates and serving endpoints (gates, endpoints), and the desired state they make (desired,
values). The lowest layer above errors: it imports nothing of the registry, planning or apply."""
