# The earlier library's docs, section 4.2.1 (shared/seed/keycloak-client-docs.txt), a test input:
# only its import is changed (keycloak -> kc_core). Do not tidy it:
# tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
#! -*- coding: utf-8 -*-
from kc_core import Client

kc = Client()
kc.pat()
