"""`lowcarbon market close-auctions | expire-orders | prices`: the market's scheduled jobs and its price table."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lowcarbon.market import services


class Command(BaseCommand):
    help = "Market jobs: close auctions whose window ended, expire old orders, print daily prices."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="job", required=True)
        sub.add_parser("close-auctions", help="allocate every auction whose bidding window has closed")
        sub.add_parser(
            "expire-orders", help="close listings and buy requests past their validity, freeing units"
        )
        p = sub.add_parser("prices", help="daily open, close and volume (the Guangzhou closing-price rule)")
        p.add_argument("--until", help="last day, YYYY-MM-DD (default today)")
        p.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        job = opts["job"]
        if job == "close-auctions":
            done = services.do_close_auctions()
            for a in done:
                self.stdout.write(
                    f"{a.number}: sold {a.sold} of {a.quantity} t, lowest accepted price {a.clearing_price or '-'}"
                )
            self.stdout.write(f"{len(done)} auction(s) closed")
        elif job == "expire-orders":
            done = services.do_expire_orders()
            for o in done:
                self.stdout.write(f"{o.number}: expired, {o.remaining} t not traded")
            self.stdout.write(f"{len(done)} order(s) expired")
        else:
            until = None
            if opts.get("until"):
                try:
                    until = date.fromisoformat(opts["until"])
                except ValueError:
                    raise CommandError("--until must be a date YYYY-MM-DD")
            rows = services.closes(until)
            if opts["json"]:
                self.stdout.write(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
                return
            self.stdout.write("day         open     close    listing_t  volume_t  value_cny")
            for r in rows:
                self.stdout.write(
                    f"{r['day']}  {r['open'] or '-':>7}  {r['close'] or '-':>7}  {r['listing_volume_t']:>9}  "
                    f"{r['volume_t']:>8}  {r['value_cny']:>10}"
                )
