"""The review workflow of an application (domain.md §3.2–3.3, adapted to the platform):

    draft ──submit──▶ submitted ──start_review──▶ city_review ──approve──▶ approved ──issue──▶ issued
                                                   │   ▲
                           send_to_verification ───┘   └── complete_verification (verifier records the result;
                                                   ▼                               the reviewer then decides)
                                              verification
    submitted / city_review ──return──▶ returned ──resubmit──▶ submitted
    submitted / city_review / verification ──reject──▶ rejected            (final; the claimed months are freed)
    draft / submitted / city_review / verification / returned ──withdraw──▶ withdrawn   (final; months freed)

Who may act: the applicant side (the preparer, or a colleague acting for the same applicant organisation) submits,
resubmits and withdraws; a reviewer (city or town bureau) starts the review, returns, rejects, sends to verification
and approves; a verifier completes verification; the registry administrator issues (through the ledger).
Four eyes: nobody on the applicant side may review, verify or issue the application, and the issuer must not be
the reviewer who approved it — preparer, reviewer and issuer are three different people.

Pure Python: the service tells which parties the acting person belongs to; this module decides.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# states (Application.State values)
DRAFT = "draft"
SUBMITTED = "submitted"
CITY_REVIEW = "city_review"
VERIFICATION = "verification"
APPROVED = "approved"
ISSUED = "issued"
RETURNED = "returned"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"

STATES = (DRAFT, SUBMITTED, CITY_REVIEW, VERIFICATION, APPROVED, ISSUED, RETURNED, REJECTED, WITHDRAWN)
#: states after which nothing more happens
FINAL_STATES = frozenset({ISSUED, REJECTED, WITHDRAWN})
#: states in which the application's (system, month) claims are released
RELEASING_STATES = frozenset({REJECTED, WITHDRAWN})
#: states in which the applicant prepares the application (report, commitment)
EDITABLE_STATES = frozenset({DRAFT, RETURNED})

# parties
APPLICANT = "applicant"
REVIEWER = "reviewer"
VERIFIER = "verifier"
ISSUER = "issuer"

# actions
SUBMIT = "submit"
RESUBMIT = "resubmit"
WITHDRAW = "withdraw"
START_REVIEW = "start_review"
RETURN = "return"
REJECT = "reject"
SEND_TO_VERIFICATION = "send_to_verification"
COMPLETE_VERIFICATION = "complete_verification"
APPROVE = "approve"
ISSUE = "issue"


@dataclass(frozen=True)
class Step:
    """A transition: the action, the states it leaves from, the state it leads to, who may take it, and whether a
    comment (the reason or result) is required."""

    action: str
    sources: frozenset[str]
    target: str
    party: str
    comment_required: bool = False


STEPS: dict[str, Step] = {
    s.action: s
    for s in (
        Step(SUBMIT, frozenset({DRAFT}), SUBMITTED, APPLICANT),
        Step(RESUBMIT, frozenset({RETURNED}), SUBMITTED, APPLICANT),
        Step(
            WITHDRAW, frozenset({DRAFT, SUBMITTED, CITY_REVIEW, VERIFICATION, RETURNED}), WITHDRAWN, APPLICANT
        ),
        Step(START_REVIEW, frozenset({SUBMITTED}), CITY_REVIEW, REVIEWER),
        Step(RETURN, frozenset({SUBMITTED, CITY_REVIEW}), RETURNED, REVIEWER, comment_required=True),
        Step(
            REJECT,
            frozenset({SUBMITTED, CITY_REVIEW, VERIFICATION}),
            REJECTED,
            REVIEWER,
            comment_required=True,
        ),
        Step(SEND_TO_VERIFICATION, frozenset({CITY_REVIEW}), VERIFICATION, REVIEWER),
        Step(COMPLETE_VERIFICATION, frozenset({VERIFICATION}), CITY_REVIEW, VERIFIER, comment_required=True),
        Step(APPROVE, frozenset({CITY_REVIEW}), APPROVED, REVIEWER),
        Step(ISSUE, frozenset({APPROVED}), ISSUED, ISSUER),
    )
}

#: actions in the order they are offered on a page
ACTIONS = tuple(STEPS)

# refusal reason codes
UNKNOWN_ACTION = "unknown_action"
WRONG_STATE = "wrong_state"
NOT_ALLOWED = "not_allowed"
FOUR_EYES = "four_eyes"
COMMENT_REQUIRED = "comment_required"


class WorkflowRefused(Exception):
    """A transition that may not be made: `code` is one of the refusal reason codes above."""

    def __init__(self, code: str, action: str, state: str) -> None:
        super().__init__(f"{code}: {action} from {state}")
        self.code = code
        self.action = action
        self.state = state


def decide(
    action: str,
    state: str,
    parties: Collection[str],
    *,
    comment: str = "",
    approved_by_actor: bool = False,
) -> str:
    """The state `action` leads to, if the person (belonging to `parties`) may take it from `state` now.

    `parties` holds APPLICANT when the person is the preparer or acts for the applicant organisation, and the roles
    they hold (REVIEWER, VERIFIER, ISSUER). `approved_by_actor`: the person is the reviewer who approved the
    application (may not issue it). Raises WorkflowRefused."""
    step = STEPS.get(action)
    if step is None:
        raise WorkflowRefused(UNKNOWN_ACTION, action, state)
    if state not in step.sources:
        raise WorkflowRefused(WRONG_STATE, action, state)
    if step.party not in parties:
        raise WorkflowRefused(NOT_ALLOWED, action, state)
    if step.party != APPLICANT and APPLICANT in parties:
        raise WorkflowRefused(FOUR_EYES, action, state)
    if step.party == ISSUER and approved_by_actor:
        raise WorkflowRefused(FOUR_EYES, action, state)
    if step.comment_required and not comment.strip():
        raise WorkflowRefused(COMMENT_REQUIRED, action, state)
    return step.target


def available_actions(
    state: str, parties: Collection[str], *, approved_by_actor: bool = False, include_issue: bool = False
) -> list[str]:
    """The actions the person may take now (comment aside), in page order. `issue` is left out unless asked:
    issuance runs through the ledger's own page."""
    out = []
    for action in ACTIONS:
        if action == ISSUE and not include_issue:
            continue
        try:
            decide(action, state, parties, comment="-", approved_by_actor=approved_by_actor)
        except WorkflowRefused:
            continue
        out.append(action)
    return out


def releases_claims(state: str) -> bool:
    """Whether an application in `state` has given its (system, month) claims back."""
    return state in RELEASING_STATES
