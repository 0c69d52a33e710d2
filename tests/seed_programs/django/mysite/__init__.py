# The earlier library's program (shared/seed/repo-examples/django/mysite/__init__.py), a test input: only its imports are changed
# (keycloak.* -> kc names). Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
