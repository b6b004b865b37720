"""schemathesis over the OpenAPI schema (/api/v1/schema/), run in-process against the project's WSGI application:
no generated input may cause a server error (5xx), neither for a person holding every role (by token) nor for a
member of the public. A modest number of examples per operation keeps the run to a few minutes."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from lowcarbon.accounts.models import Role
from lowcarbon.config.wsgi import application
from tests.factories import make_org, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

EXAMPLES = int(os.environ.get("LOWCARBON_FUZZ_EXAMPLES", "4"))  # more for a deeper run by hand


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():  # type: ignore[no-untyped-def]
    """Called as a WSGI application, Django closes the database connection at the end of each request, which
    on PostgreSQL would end the test's transaction: stop it, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def broad_token(media_root) -> str:  # type: ignore[no-untyped-def]
    """A person holding every role (through an aggregator organisation) and a superuser's rights."""
    org = make_org("aggregator")
    user = make_user(*[r.value for r in Role], org=org, username="fuzzer", is_staff=True, is_superuser=True)
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_with_every_role(case, broad_token):  # type: ignore[no-untyped-def]
    case.call_and_validate(headers={"Authorization": f"Token {broad_token}"}, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_anonymously(case, media_root):  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=[not_a_server_error])
