"""Builders for the finance tests: owners with their organisations, a financier, a project."""

from __future__ import annotations

from typing import Any

from lowcarbon.finance import services as svc
from tests.factories import make_org, make_user


def enterprise_owner(username: str | None = None) -> Any:
    org = make_org("enterprise")
    return make_user("owner_enterprise", org=org, username=username)


def financier(username: str | None = None) -> Any:
    org = make_org("financial")
    return make_user("financier", org=org, username=username)


def project_data(**extra: Any) -> dict[str, Any]:
    data = {
        "name": "五金厂屋顶光伏",
        "community": "dongqu",
        "roof_area_m2": "6500",
        "amount_cny": "3500000",
        "financing_type": "loan",
        "tilt_deg": "10",
        "azimuth_deg": "180",
        "self_consumption_percent": "70",
        "description": "厂房屋顶",
    }
    data.update(extra)
    return data


def published(owner: Any, **extra: Any) -> Any:
    p = svc.do_create_project(owner, project_data(**extra))
    return svc.do_publish(owner, p)


def isolation_project() -> Any:
    """A draft financing project of an enterprise owner other than the isolation test's people, with one lead
    route to probe (tests/test_isolation.py)."""
    return svc.do_create_project(enterprise_owner(), project_data(name="隔离测试项目"))
