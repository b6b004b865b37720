"""Pagination of API lists: limit/offset, with bounds so that a huge or odd number is a normal request, not an
error of the database."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination with at most 1000 rows a page and an offset the database can represent."""

    max_limit = 1000
    max_offset = 10**12

    def get_offset(self, request: Any) -> int:
        return min(super().get_offset(request), self.max_offset)
