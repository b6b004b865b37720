"""The public dashboard's anonymity threshold k is the versioned parameter `dashboard.k_anonymity` (seeded at 5 by a
migration, editable in the back office): a new version changes what the public map and figures show at once."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from lowcarbon.core.models import Parameter
from lowcarbon.core.params import set_parameter
from tests.dashboard.helpers import system_in
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def town(media_root):
    """Six households in Dongqu, five in Xiqu next to it."""
    for _ in range(6):
        system_in("dongqu", make_user("owner_household"))
    for _ in range(5):
        system_in("xiqu", make_user("owner_household"))


def _map() -> list[tuple[list[str], int]]:
    data = json.loads(Client().get("/dashboard/data.json").content)
    return sorted((a["keys"], a["systems"]) for a in data["areas"])


def test_k_is_a_seeded_versioned_parameter():
    p = Parameter.objects.get(key="dashboard.k_anonymity")
    assert (p.version, p.value, p.confidence) == (1, Decimal(5), "A") and p.source


def test_changing_k_changes_the_public_map_at_once(town):
    assert _map() == [(["dongqu"], 6), (["xiqu"], 5)]  # k = 5: each community is an area of its own
    body = Client().get("/dashboard/").content.decode()
    assert "至少有 5 个系统" in body

    set_parameter("dashboard.k_anonymity", Decimal(6), timezone.localdate(), "stricter for the test")
    assert _map() == [(["dongqu", "xiqu"], 11)]  # Xiqu's five are below k = 6: merged with Dongqu
    body = Client().get("/dashboard/").content.decode()
    assert "至少有 6 个系统" in body

    set_parameter("dashboard.k_anonymity", Decimal(12), timezone.localdate(), "more than the town has")
    data = json.loads(Client().get("/dashboard/data.json").content)
    assert data["areas"] == [] and data["publishable"] is False and data["totals"]["systems"] is None
