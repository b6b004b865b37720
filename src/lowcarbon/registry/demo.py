"""Demo part of the registry: the 2018 precedent replayed on the demo year — the aggregator bundles the consenting
households, two enterprises apply for their own roofs; a city reviewer approves and the registry administrator
issues (three different people), through the same services the pages use."""

from __future__ import annotations

from typing import Any

DEMO_ORDER = 50


def load_demo_part(stdout: Any = None) -> None:
    from lowcarbon.accounts.models import User
    from lowcarbon.core.domain.errors import DomainError
    from lowcarbon.demo import DEMO_YEAR
    from lowcarbon.pv.models import PlausibilityFlag
    from lowcarbon.registry import applications as svc
    from lowcarbon.registry.models import Application

    if Application.objects.exists():
        return
    users = {
        u.username: u
        for u in User.objects.filter(
            username__in=["aggregator", "reviewer", "admin", "enterprise1", "enterprise2"]
        )
    }
    plans = [("aggregator", "bundle"), ("enterprise1", "single"), ("enterprise2", "single")]
    for username, kind in plans:
        actor = users[username]
        candidates = svc.claimable_systems(actor, kind)
        # a system with an open reject flag in the year waits for the reviewer (it shows in the plausibility
        # queue); the others go ahead, as an aggregator would file them
        flagged = set(
            PlausibilityFlag.objects.filter(
                system__in=candidates, severity="reject", cleared_at__isnull=True, month__year=DEMO_YEAR
            ).values_list("system__code", flat=True)
        )
        systems = [s.code for s in candidates if s.code not in flagged]
        if flagged and stdout is not None:
            stdout.write(f"  {', '.join(sorted(flagged))}: open plausibility flag, left for the reviewer")
        if not systems:
            continue
        try:
            app = svc.do_create_application(
                actor,
                system_codes=systems,
                first_month=f"{DEMO_YEAR}-01",
                last_month=f"{DEMO_YEAR}-12",
                kind=kind,
            )
        except DomainError as exc:  # a system with an open flag: leave it out, say so
            if stdout is not None:
                stdout.write(f"  demo application of {username} not made: {exc.message}")
            continue
        svc.do_generate_report(app, actor)
        svc.do_sign_commitment(app, actor)
        svc.do_transition(app, "submit", actor)
        svc.do_transition(app, "start_review", users["reviewer"])
        svc.do_transition(app, "approve", users["reviewer"], "数据核对无误 / data checked")
        svc.do_issue(app, users["admin"])
        if stdout is not None:
            app.refresh_from_db()
            stdout.write(f"  {app.code} ({kind}, {len(systems)} systems): {app.units} t issued")
