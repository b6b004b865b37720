"""API: the person behind the request (masked personal data, roles, organisations)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


class RoleSerializer(serializers.Serializer):
    role = serializers.CharField()
    label = serializers.CharField()
    organisation = serializers.CharField(allow_null=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    real_name = serializers.CharField()
    phone_masked = serializers.CharField()
    id_number_masked = serializers.CharField()
    roles = RoleSerializer(many=True)
    organisations = serializers.ListField(child=serializers.CharField())


@extend_schema(responses=MeSerializer, summary="The logged-in person (personal data masked)")
@api_view(["GET"])
def me(request: Request) -> Response:
    u = request.user
    data = {
        "username": u.username,
        "real_name": u.real_name,
        "phone_masked": u.phone_masked,
        "id_number_masked": u.id_number_masked,
        "roles": [
            {
                "role": g.role,
                "label": str(g.get_role_display()),
                "organisation": g.organisation.name if g.organisation else None,
            }
            for g in u.role_grants.select_related("organisation")
        ],
        "organisations": [m.organisation.name for m in u.memberships.select_related("organisation")],
    }
    return Response(MeSerializer(data).data)
