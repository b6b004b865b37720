"""A world for the security tests: one person for every role (plus a member of the public, a staff member and a
superuser), and the data of a household owner, Alice, that nobody else may read or change: her PV system with its
meter readings and a plausibility flag, a draft and an issued application, a retirement, market orders, an auction,
a deal and a trade, a demonstration project with a cooperation request; besides, a financing project of an
enterprise owner, notices (draft and published) and an offset profile."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from lowcarbon.accounts.models import Role, User
from lowcarbon.info import services as info_svc
from lowcarbon.market import services as market_svc
from lowcarbon.metering.parsers import iter_csv
from lowcarbon.metering.services import do_ingest
from lowcarbon.pv.models import PlausibilityFlag
from lowcarbon.pv.services import do_add_evidence, do_grant_consent
from lowcarbon.registry import ledger
from lowcarbon.registry.models import SerialBlock
from tests.factories import PASSWORD, make_org, make_system, make_user
from tests.finance.helpers import enterprise_owner, project_data
from tests.info.helpers import make_article, make_project, png_bytes
from tests.market.helpers import REF
from tests.registry.app_helpers import isolation_application
from tests.registry.cert_helpers import issue

#: Alice's personal data: none of it may ever appear unmasked, and only where she or an official may see it
ALICE_NAME = "黎秀英"
ALICE_PHONE = "13926001234"
ALICE_ID = "44200019800101002X"  # valid check digit (GB 11643)
ALICE_SERIAL = "ALICE-SEC-01"
SENDER_PHONE = "13800996655"  # the phone of a member of the public who sent a cooperation request
FINANCE_OWNER_NAME = "冼振华"  # the enterprise owner of the financing project

ANON = "anonymous"
STAFF = "staff"
SUPER = "superuser"
ALICE = "alice"  # the owner of the data
#: one actor per role, named by the role
ROLES = [r.value for r in Role]
ACTORS = [ANON, *ROLES, STAFF, SUPER]

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class World:
    people: dict[str, User] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    _clients: dict[tuple[str, bool], Client] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.objects[key]

    def client(self, actor: str, api: bool = False) -> Client:
        """A client logged in as the actor (by session for pages, by token for the API)."""
        key = (actor, api)
        if key not in self._clients:
            if actor == ANON:
                c = Client()
            elif api:
                token, _ = Token.objects.get_or_create(user=self.people[actor])
                c = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
            else:
                c = Client()
                c.force_login(self.people[actor])
            self._clients[key] = c
        return self._clients[key]


def _person(role: str) -> User:
    org = None
    kind = {
        Role.OWNER_ENTERPRISE: "enterprise",
        Role.OWNER_INSTITUTION: "institution",
        Role.AGGREGATOR: "aggregator",
        Role.FINANCIER: "financial",
        Role.BUYER: "enterprise",
        Role.VERIFIER: "verifier",
    }.get(role)
    if kind:
        org = make_org(kind)
    return make_user(role, org=org, username=f"sec_{role}", phone="13700000000")


def build_world() -> World:
    w = World()
    for role in ROLES:
        w.people[role] = _person(role)
    w.people[STAFF] = make_user(username="sec_staff", is_staff=True)
    w.people[SUPER] = make_user(username="sec_super", is_staff=True, is_superuser=True)
    alice = make_user(Role.OWNER_HOUSEHOLD, username="alice", real_name=ALICE_NAME, phone=ALICE_PHONE)
    alice.set_id_number(ALICE_ID)
    alice.save()
    w.people[ALICE] = alice
    o = w.objects

    # PV, metering, plausibility
    system = make_system(alice, serial=ALICE_SERIAL)
    o["system"] = system
    data = f"meter_serial,timestamp,energy,unit\n{ALICE_SERIAL},2025-06-01T12:00:00+08:00,1.5,kWh\n{ALICE_SERIAL},x,1,kWh\n"
    o["batch"] = do_ingest(iter_csv(io.BytesIO(data.encode())), source="upload", filename="a.csv", user=alice)
    o["evidence"] = do_add_evidence(system, "ownership", SimpleUploadedFile("deed.pdf", PDF), alice)
    o["consent"] = do_grant_consent(system, aggregator=make_org("aggregator"), document="授权书", actor=alice)
    o["flag"] = PlausibilityFlag.objects.create(
        system=system,
        month=date(2025, 6, 1),
        code="monthly_yield_reject",
        severity="reject",
        value=250,
        limit=200,
    )

    # registry: a draft application, an issued one, a retirement
    o["application"] = isolation_application(alice, system)
    account = ledger.account_for_user(alice)
    o["account"] = account
    o["issued"] = issue(
        [(system, 10, account)], applicant=alice, issuer=w.people[Role.REGISTRY_ADMIN]
    ).application
    o["issued_block"] = SerialBlock.objects.filter(application=o["issued"]).order_by("pk").first()
    o["retirement"] = ledger.do_retire(
        account=account,
        quantity=2,
        beneficiary="小榄镇绿色家庭",
        purpose="voluntary",
        retired_on=date(2025, 6, 30),
        actor=alice,
    )

    # market: a listing, an auction, a deal proposed to Carol, a trade with Carol
    carol = make_user(Role.BUYER, username="carol", real_name="区美玲")
    w.people["carol"] = carol
    carol_account = ledger.account_for_user(carol)
    o["listing"] = market_svc.do_place_listing(account=account, actor=alice, quantity=1, price=REF)[0]
    sold = market_svc.do_place_listing(account=account, actor=alice, quantity=1, price=REF)[0]
    o["trade"] = market_svc.do_take_listing(listing=sold, account=carol_account, actor=carol, quantity=1)
    from datetime import timedelta

    from django.utils import timezone

    o["auction"] = market_svc.do_create_auction(
        account=account,
        actor=alice,
        quantity=1,
        floor_price=REF,
        closes_at=timezone.now() + timedelta(days=1),
    )
    o["deal"] = market_svc.do_propose_deal(
        seller=account, buyer=carol_account, actor=alice, quantity=1, price=REF
    )

    # information service: a draft and a published notice with an attachment; Alice's demonstration project
    editor = w.people[Role.CONTENT_EDITOR]
    o["draft_article"] = make_article(editor, publish=False, title_zh="内部草稿通知")
    o["article"] = make_article(editor)
    o["attachment"] = info_svc.do_add_attachment(editor, o["article"], SimpleUploadedFile("方法学.pdf", PDF))
    project_org = make_org("institution")
    from lowcarbon.accounts.models import Membership

    Membership.objects.get_or_create(user=alice, organisation=project_org)
    o["demo_project"] = make_project(editor, project_org, alice, systems=[system.code])
    o["outcome"] = info_svc.do_add_outcome(
        editor,
        o["demo_project"],
        {"indicator_zh": "减排", "value": "12", "unit": "t", "period": "2025", "source": "测算"},
    )
    o["photo"] = info_svc.do_add_photo(
        editor, o["demo_project"], SimpleUploadedFile("p.png", png_bytes()), {"caption_zh": "屋顶"}
    )
    o["cooperation_request"] = info_svc.do_send_request(
        o["demo_project"],
        {"name": "王敏", "organisation": "东凤镇人民政府", "contact": SENDER_PHONE, "message": "参观"},
        sender_ip="10.1.1.1",
    )

    # finance: a draft project of an enterprise owner
    from lowcarbon.finance import services as finance_svc

    fin_owner = enterprise_owner()
    User.objects.filter(pk=fin_owner.pk).update(real_name=FINANCE_OWNER_NAME, phone="13511112222")
    fin_owner.refresh_from_db()
    w.people["finance_owner"] = fin_owner
    o["financing_project"] = finance_svc.do_create_project(fin_owner, project_data(name="隔离测试项目"))
    for p in w.people.values():
        p.refresh_from_db()
        ledger.account_for_user(p)  # opened on a first visit to the market or the registry: open them now
    return w


def login_with_password(username: str) -> Client:
    c = Client()
    assert c.login(username=username, password=PASSWORD)
    return c


TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/vnd.oai.openapi")


def body_text(resp: Any) -> str:
    """The answer as text when it is text (HTML, JSON, CSV), else empty (PDF, images, spreadsheets)."""
    if not resp.get("Content-Type", "").startswith(TEXT_TYPES):
        return ""
    raw = b"".join(resp.streaming_content) if resp.streaming else resp.content
    return raw.decode("utf-8", "replace")
