"""The glue the GitHub workflows and the composite action run (`reconciler ci ...`): the plan as
one sticky pull request comment, the drift issue, environments in promotion order applied one at
a time, apply records as job outputs, the revert pull request when serving does not follow, and
the action's one command. Inside the package, so a promotion repository needs no scripts of its
own. GitHub is reached through the `gh` CLI only; nothing here prints (cli/ci.py does)."""
