"""`todo-infra`: the tooling around the Pulumi program (plans, cost, diff, delivery).

It imports the program (`infra.settings`, `infra.components`, `infra.policy`); the
program never imports it, which `tests/test_import_graph.py` holds.
"""
