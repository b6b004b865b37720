"""API: the person behind the request (masked personal data, roles, organisations)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
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


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


@extend_schema(
    request=TokenRequestSerializer,
    responses={200: TokenSerializer, 400: TokenErrorSerializer, 429: TokenErrorSerializer},
    summary="Exchange a user name and password for the person's API token",
    auth=[],
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def obtain_token(request: Request) -> Response:
    """The person's API token (created if needed). Failed attempts count towards the log-in rate limit."""
    from django.contrib.auth import authenticate
    from django.utils.translation import gettext as _
    from rest_framework.authtoken.models import Token

    from lowcarbon.accounts import audit, throttle
    from lowcarbon.accounts.forms import THROTTLED

    form = TokenRequestSerializer(data=request.data)
    if not form.is_valid():
        return Response({"detail": _("Give a user name and a password.")}, status=400)
    username, password = form.validated_data["username"], form.validated_data["password"]
    ip = audit.client_ip(request)
    if throttle.is_locked(username, ip):
        audit.event(audit.Kind.LOGIN_THROTTLED, username=username, request=request, door="api")
        return Response({"detail": str(THROTTLED)}, status=429)
    user = authenticate(request._request, username=username, password=password)
    if user is None:
        return Response({"detail": _("The user name or password is not correct.")}, status=400)
    throttle.clear(username, ip)
    token, created = Token.objects.get_or_create(user=user)
    audit.event(audit.Kind.LOGIN_SUCCEEDED, actor=user, request=request, door="api")
    if created:
        audit.event(audit.Kind.TOKEN_CREATED, actor=user, request=request, target=user.get_username())
    return Response(TokenSerializer({"token": token.key}).data)
