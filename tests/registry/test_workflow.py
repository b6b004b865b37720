"""The review workflow: every transition and who may make it (domain and service), four eyes, comments, the
timeline, journal entries, notifications at each step and the reviewers' queue with waiting days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from lowcarbon.accounts.models import Role, RoleGrant
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import applications as svc
from lowcarbon.registry.domain import workflow as wf
from lowcarbon.registry.models import Application, ClaimedMonth, JournalEntry, Notification, Transition
from tests.registry.app_helpers import approve, bundle_world, ready_application

# --- the state machine, pure ------------------------------------------------------------------------------------

ALL_PARTIES = (wf.APPLICANT, wf.REVIEWER, wf.VERIFIER, wf.ISSUER)

#: (action, from state, party allowed, state reached)
ALLOWED = [
    (wf.SUBMIT, wf.DRAFT, wf.APPLICANT, wf.SUBMITTED),
    (wf.RESUBMIT, wf.RETURNED, wf.APPLICANT, wf.SUBMITTED),
    (wf.WITHDRAW, wf.DRAFT, wf.APPLICANT, wf.WITHDRAWN),
    (wf.WITHDRAW, wf.SUBMITTED, wf.APPLICANT, wf.WITHDRAWN),
    (wf.WITHDRAW, wf.CITY_REVIEW, wf.APPLICANT, wf.WITHDRAWN),
    (wf.WITHDRAW, wf.VERIFICATION, wf.APPLICANT, wf.WITHDRAWN),
    (wf.WITHDRAW, wf.RETURNED, wf.APPLICANT, wf.WITHDRAWN),
    (wf.START_REVIEW, wf.SUBMITTED, wf.REVIEWER, wf.CITY_REVIEW),
    (wf.RETURN, wf.SUBMITTED, wf.REVIEWER, wf.RETURNED),
    (wf.RETURN, wf.CITY_REVIEW, wf.REVIEWER, wf.RETURNED),
    (wf.REJECT, wf.SUBMITTED, wf.REVIEWER, wf.REJECTED),
    (wf.REJECT, wf.CITY_REVIEW, wf.REVIEWER, wf.REJECTED),
    (wf.REJECT, wf.VERIFICATION, wf.REVIEWER, wf.REJECTED),
    (wf.SEND_TO_VERIFICATION, wf.CITY_REVIEW, wf.REVIEWER, wf.VERIFICATION),
    (wf.COMPLETE_VERIFICATION, wf.VERIFICATION, wf.VERIFIER, wf.CITY_REVIEW),
    (wf.APPROVE, wf.CITY_REVIEW, wf.REVIEWER, wf.APPROVED),
    (wf.ISSUE, wf.APPROVED, wf.ISSUER, wf.ISSUED),
]


@pytest.mark.unit
@pytest.mark.parametrize(("action", "state", "party", "target"), ALLOWED)
def test_each_transition_only_for_its_party(action, state, party, target):
    assert wf.decide(action, state, {party}, comment="ok") == target
    for other in ALL_PARTIES:
        if other == party:
            continue
        with pytest.raises(wf.WorkflowRefused) as exc:
            wf.decide(action, state, {other}, comment="ok")
        assert exc.value.code == wf.NOT_ALLOWED


@pytest.mark.unit
def test_every_other_state_is_refused():
    allowed = {(a, s) for a, s, _p, _t in ALLOWED}
    for action in wf.ACTIONS:
        for state in wf.STATES:
            if (action, state) in allowed:
                continue
            with pytest.raises(wf.WorkflowRefused) as exc:
                wf.decide(action, state, set(ALL_PARTIES), comment="ok")
            assert exc.value.code == wf.WRONG_STATE, (action, state)


@pytest.mark.unit
def test_no_withdrawal_once_approved_and_final_states_are_final():
    for state in (wf.APPROVED, wf.ISSUED, wf.REJECTED, wf.WITHDRAWN):
        assert wf.available_actions(state, {wf.APPLICANT}) == []
    assert wf.available_actions(wf.ISSUED, set(ALL_PARTIES) - {wf.APPLICANT}, include_issue=True) == []


@pytest.mark.unit
def test_four_eyes_in_the_domain():
    # the preparer holding a reviewer role may not review their own application
    with pytest.raises(wf.WorkflowRefused) as exc:
        wf.decide(wf.APPROVE, wf.CITY_REVIEW, {wf.APPLICANT, wf.REVIEWER})
    assert exc.value.code == wf.FOUR_EYES
    with pytest.raises(wf.WorkflowRefused) as exc:
        wf.decide(wf.COMPLETE_VERIFICATION, wf.VERIFICATION, {wf.APPLICANT, wf.VERIFIER}, comment="x")
    assert exc.value.code == wf.FOUR_EYES
    # the approving reviewer may not issue
    with pytest.raises(wf.WorkflowRefused) as exc:
        wf.decide(wf.ISSUE, wf.APPROVED, {wf.REVIEWER, wf.ISSUER}, approved_by_actor=True)
    assert exc.value.code == wf.FOUR_EYES
    assert wf.decide(wf.ISSUE, wf.APPROVED, {wf.ISSUER}) == wf.ISSUED


@pytest.mark.unit
@pytest.mark.parametrize("action", [wf.RETURN, wf.REJECT])
def test_return_and_reject_need_a_reason(action):
    with pytest.raises(wf.WorkflowRefused) as exc:
        wf.decide(action, wf.CITY_REVIEW, {wf.REVIEWER}, comment="   ")
    assert exc.value.code == wf.COMMENT_REQUIRED


@pytest.mark.unit
def test_claims_released_only_by_rejection_and_withdrawal():
    assert {s for s in wf.STATES if wf.releases_claims(s)} == {wf.REJECTED, wf.WITHDRAWN}


# --- the service: roles, four eyes, records ----------------------------------------------------------------------


@pytest.fixture
def world(db, media_root):
    return bundle_world(3)


@pytest.fixture
def app(world):
    return ready_application(world.aggregator, world.codes)


def _refused(app, action, actor, comment="", code=None):
    with pytest.raises(DomainError) as exc:
        svc.do_transition(app, action, actor, comment)
    if code:
        assert exc.value.code == code, exc.value.message
    app.refresh_from_db()
    return exc.value


@pytest.mark.django_db
@pytest.mark.integration
def test_full_path_with_verification_timeline_journal_and_notifications(world, app):
    w = world
    journal_before = JournalEntry.objects.count()
    svc.do_transition(app, "submit", w.aggregator, "请审核")
    svc.do_transition(app, "start_review", w.reviewer)
    svc.do_transition(app, "send_to_verification", w.reviewer, "抽查三户")
    svc.do_transition(app, "complete_verification", w.verifier, "核证通过，数据一致")
    svc.do_transition(app, "approve", w.reviewer_town, "同意")
    app.refresh_from_db()
    assert app.state == "approved" and app.reviewer == w.reviewer_town and app.submitted_at is not None

    steps = list(Transition.objects.filter(application=app).order_by("at", "pk"))
    assert [(t.from_state, t.to_state) for t in steps] == [
        ("", "draft"),
        ("draft", "submitted"),
        ("submitted", "city_review"),
        ("city_review", "verification"),
        ("verification", "city_review"),
        ("city_review", "approved"),
    ]
    assert [t.actor for t in steps] == [
        w.aggregator,
        w.aggregator,
        w.reviewer,
        w.reviewer,
        w.verifier,
        w.reviewer_town,
    ]
    assert steps[4].comment == "核证通过，数据一致" and all(t.at for t in steps)
    kinds = list(JournalEntry.objects.order_by("seq").values_list("kind", flat=True)[journal_before:])
    assert kinds == [
        "app_submit",
        "app_start_review",
        "app_send_to_verification",
        "app_complete_verification",
        "app_approve",
    ]

    # the applicant is told at every step, the verifier when it is their turn, administrators when approved
    msgs = list(
        Notification.objects.filter(user=w.aggregator).order_by("pk").values_list("message", flat=True)
    )
    assert len(msgs) == 6 and all(app.code in m for m in msgs)
    assert Notification.objects.filter(user=w.verifier, message__contains=app.code).count() == 1
    assert Notification.objects.filter(user=w.admin, message__contains=app.code).count() == 1
    # households hear of the outcome
    assert Notification.objects.filter(user=w.households[0], message__contains=app.code).count() == 2


@pytest.mark.django_db
@pytest.mark.integration
def test_who_may_do_what(world, app):
    w = world
    _refused(app, "submit", w.reviewer, code="not_allowed")
    # a household of the bundle is not the applicant
    _refused(app, "submit", w.households[0], code="not_allowed")
    _refused(app, "start_review", w.reviewer, code="wrong_state")
    svc.do_transition(app, "submit", w.aggregator)
    _refused(app, "start_review", w.aggregator, code="not_allowed")
    _refused(app, "start_review", w.verifier, code="not_allowed")
    _refused(app, "approve", w.reviewer, code="wrong_state")  # review has not started
    svc.do_transition(app, "start_review", w.reviewer)
    _refused(app, "approve", w.verifier, code="not_allowed")
    _refused(app, "approve", w.admin, code="not_allowed")
    _refused(app, "complete_verification", w.verifier, "ok", code="wrong_state")
    svc.do_transition(app, "send_to_verification", w.reviewer)
    _refused(app, "complete_verification", w.reviewer, "ok", code="not_allowed")
    _refused(app, "complete_verification", w.verifier, "", code="comment_required")
    _refused(app, "approve", w.reviewer, code="wrong_state")  # the verifier records first
    svc.do_transition(app, "complete_verification", w.verifier, "通过")
    _refused(app, "reject", w.reviewer, "", code="comment_required")
    svc.do_transition(app, "approve", w.reviewer)
    assert app.state == "approved"
    _refused(app, "withdraw", w.aggregator, code="wrong_state")  # no withdrawal once approved
    _refused(app, "return", w.reviewer, "x", code="wrong_state")


@pytest.mark.django_db
@pytest.mark.integration
def test_return_and_resubmit(world, app):
    w = world
    svc.do_transition(app, "submit", w.aggregator)
    svc.do_transition(app, "return", w.reviewer, "请补充电表照片")
    app.refresh_from_db()
    assert app.state == "returned"
    assert "请补充电表照片" in svc.notifications_for(w.aggregator).first().message
    _refused(app, "submit", w.aggregator, code="wrong_state")
    svc.do_sign_commitment(app, w.aggregator)  # may be re-signed while returned
    svc.do_transition(app, "resubmit", w.aggregator, "已补充")
    app.refresh_from_db()
    assert app.state == "submitted"
    # months stay claimed while returned and resubmitted
    assert ClaimedMonth.objects.filter(application=app, live=True).count() == 36


@pytest.mark.django_db
@pytest.mark.integration
def test_submit_needs_commitment_and_report(world):
    w = world
    app = svc.do_create_application(
        w.aggregator, system_codes=w.codes, first_month="2025-01", last_month="2025-12", kind="bundle"
    )
    with translation.override("en"):
        err = _refused(app, "submit", w.aggregator, code="incomplete")
    assert "commitment" in err.message and "report" in err.message
    assert app.state == "draft"


@pytest.mark.django_db
@pytest.mark.integration
@pytest.mark.parametrize("final", ["reject", "withdraw"])
def test_reject_and_withdraw_free_the_months(world, app, final):
    w = world
    svc.do_transition(app, "submit", w.aggregator)
    if final == "reject":
        svc.do_transition(app, "reject", w.reviewer, "重复申报")
    else:
        svc.do_transition(app, "withdraw", w.aggregator, "撤回重报")
    assert ClaimedMonth.objects.filter(application=app, live=True).count() == 0
    assert ClaimedMonth.objects.filter(application=app, live=False).count() == 36
    again = svc.do_create_application(
        w.aggregator, system_codes=w.codes, first_month="2025-01", last_month="2025-12", kind="bundle"
    )
    assert again.code != app.code and again.units == app.units


@pytest.mark.django_db
@pytest.mark.integration
def test_four_eyes_preparer_may_not_review_own_application(world):
    w = world
    # the aggregator's person also holds a reviewer role
    RoleGrant.objects.create(user=w.aggregator, role=Role.REVIEWER_CITY)
    w.aggregator._roles_cache = None
    app = ready_application(w.aggregator, w.codes)
    svc.do_transition(app, "submit", w.aggregator)
    _refused(app, "start_review", w.aggregator, code="four_eyes")
    svc.do_transition(app, "start_review", w.reviewer)
    with translation.override("en"):
        err = _refused(app, "approve", w.aggregator, code="four_eyes")
    assert "three different people" in err.message
    # a colleague acting for the same aggregator organisation counts as the applicant too
    colleague = RoleGrant.objects.create(
        user=w.reviewer_town, role=Role.AGGREGATOR, organisation=w.agg_org
    ).user
    colleague._roles_cache = None
    _refused(app, "approve", colleague, code="four_eyes")
    assert app.code not in [i.application.code for i in svc.reviewer_queue(w.aggregator)]


@pytest.mark.django_db
@pytest.mark.integration
def test_issuer_is_neither_preparer_nor_reviewer(world, app):
    w = world
    RoleGrant.objects.create(user=w.reviewer, role=Role.REGISTRY_ADMIN)
    w.reviewer._roles_cache = None
    approve(app, w.aggregator, w.reviewer)
    with pytest.raises(DomainError):
        svc.do_issue(app, w.reviewer)
    with pytest.raises(DomainError):
        svc.do_issue(app, w.aggregator)
    app.refresh_from_db()
    assert app.state == "approved"
    queue = {i.application.code: i for i in svc.issue_queue(w.reviewer)}
    assert queue[app.code].actions == [] and queue[app.code].note
    told = Notification.objects.filter(user=w.aggregator, message__contains=app.code).count()
    blocks = svc.do_issue(app, w.admin)
    app.refresh_from_db()
    assert app.state == "issued" and sum(b.end - b.start + 1 for b in blocks) == app.units
    last = Transition.objects.filter(application=app).order_by("at", "pk").last()
    assert (last.from_state, last.to_state, last.actor) == ("approved", "issued", w.admin)
    assert Notification.objects.filter(user=w.aggregator, message__contains=app.code).count() == told + 1


@pytest.mark.django_db
@pytest.mark.integration
def test_reviewer_queue_shows_days_waiting(world, app):
    w = world
    svc.do_transition(app, "submit", w.aggregator)
    Application.objects.filter(pk=app.pk).update(state_since=timezone.now() - timedelta(days=5, hours=3))
    items = svc.reviewer_queue(w.reviewer)
    assert [(i.application.code, i.days_waiting) for i in items] == [(app.code, 5)]
    assert "start_review" in items[0].actions
    assert svc.reviewer_queue(w.verifier) == []  # nothing at verification
    assert svc.reviewer_queue(w.households[0]) == []
    assert [i.application.code for i in svc.reviewer_queue(w.reviewer_town)] == [app.code]
