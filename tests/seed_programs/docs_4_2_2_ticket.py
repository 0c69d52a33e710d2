# The earlier library's docs, section 4.2.2 (shared/seed/keycloak-client-docs.txt), a test input:
# only its import is changed (keycloak -> kc_core), and the two typos of the printed page
# fixed (an unclosed "delete] string and find_ticket's missing ")"), without which it is not
# Python. The test puts a resource id of its realm in place of the docs' example id.
# Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
#! -*- coding: utf-8 -*-
from kc_core import Client

kc = Client()
pat = kc.pat()

resources = [
    {
        "resource_id": "8762039c-cdfa-4ef9-9f70-45248863c4da",

        "resource_scopes": ["create", "read", "update", "delete"]
    }
]
ticket = kc.find_ticket(resources, pat["access_token"])
