"""People, organisations, memberships and roles of the platform."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts import crypto
from lowcarbon.core.domain.masking import mask_id_number, mask_phone


class Role(models.TextChoices):
    """What a person may do on the platform; one person may hold several roles."""

    OWNER_HOUSEHOLD = "owner_household", _("PV owner (household)")
    OWNER_ENTERPRISE = "owner_enterprise", _("PV owner (enterprise)")
    OWNER_INSTITUTION = "owner_institution", _("PV owner (institution)")
    AGGREGATOR = "aggregator", _("Aggregator / service agency")
    REVIEWER_CITY = "reviewer_city", _("Reviewer (city ecology-environment bureau)")
    REVIEWER_TOWN = "reviewer_town", _("Reviewer (town development and reform bureau)")
    VERIFIER = "verifier", _("Verifier")
    REGISTRY_ADMIN = "registry_admin", _("Registry administrator")
    BUYER = "buyer", _("Buyer")
    FINANCIER = "financier", _("Financier (bank, leasing company, investor)")
    CONTENT_EDITOR = "content_editor", _("Content editor (notices and documents)")


OWNER_ROLES = {Role.OWNER_HOUSEHOLD, Role.OWNER_ENTERPRISE, Role.OWNER_INSTITUTION}
REVIEWER_ROLES = {Role.REVIEWER_CITY, Role.REVIEWER_TOWN}


class User(AbstractUser):
    """A person with a log-in: real name, phone and ID-card number (stored encrypted, shown masked)."""

    real_name = models.CharField(_("real name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    id_number_encrypted = models.TextField(_("ID-card number (encrypted)"), blank=True, editable=False)
    id_number_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    preferred_language = models.CharField(
        _("preferred language"),
        max_length=10,
        choices=[("zh-hans", "简体中文"), ("en", "English")],
        default="zh-hans",
    )

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self) -> str:
        return self.real_name or self.username

    # ID-card number: never stored in clear
    def set_id_number(self, value: str) -> None:
        value = (value or "").strip().upper()
        self.id_number_encrypted = crypto.encrypt(value)
        self.id_number_hash = crypto.lookup_hash(value)

    def get_id_number(self) -> str:
        return crypto.decrypt(self.id_number_encrypted)

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.get_id_number())

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def display_name(self) -> str:
        return self.real_name or self.username

    def roles(self) -> set[str]:
        cached = getattr(self, "_roles_cache", None)
        if cached is None:
            cached = set(self.role_grants.values_list("role", flat=True))
            self._roles_cache = cached
        return cached

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles() & set(roles))

    @property
    def is_owner(self) -> bool:
        return self.has_role(*OWNER_ROLES)

    @property
    def is_aggregator(self) -> bool:
        return self.has_role(Role.AGGREGATOR)

    @property
    def is_reviewer(self) -> bool:
        return self.has_role(*REVIEWER_ROLES)

    @property
    def is_registry_admin(self) -> bool:
        return self.has_role(Role.REGISTRY_ADMIN) or self.is_superuser


class Organisation(models.Model):
    """An enterprise, an institution (school, government office) or an aggregator / service agency."""

    class Kind(models.TextChoices):
        ENTERPRISE = "enterprise", _("Enterprise")
        INSTITUTION = "institution", _("Institution (school, government office, ...)")
        AGGREGATOR = "aggregator", _("Aggregator / service agency")
        AUTHORITY = "authority", _("Authority (bureau)")
        VERIFIER = "verifier", _("Verification body")
        FINANCIAL = "financial", _("Financial institution (bank, leasing company, investor)")

    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    credit_code = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    members = models.ManyToManyField(
        User, through="Membership", related_name="organisations", verbose_name=_("members")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        constraints = [
            models.UniqueConstraint(
                fields=["credit_code"],
                condition=~models.Q(credit_code=""),
                name="organisation_credit_code_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        from django.utils.translation import get_language

        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name


class Membership(models.Model):
    """A person belongs to an organisation, as its administrator or as a member."""

    class Level(models.TextChoices):
        ADMIN = "admin", _("Administrator")
        MEMBER = "member", _("Member")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("person")
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("organisation")
    )
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.MEMBER)
    since = models.DateField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.organisation}"


class RoleGrant(models.Model):
    """A role held by a person, optionally on behalf of an organisation."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="role_grants", verbose_name=_("person")
    )
    role = models.CharField(_("role"), max_length=30, choices=Role.choices)
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("organisation")
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("role grant")
        verbose_name_plural = _("role grants")
        constraints = [
            models.UniqueConstraint(fields=["user", "role", "organisation"], name="rolegrant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"


class AuditEvent(models.Model):
    """One security-relevant event: a log-in (success or failure, with address and browser), or an administrative
    act (role grant, parameter change, issuance, cancellation, surveillance review, offset profile, publication,
    back-office change). Written by accounts.audit; never edited."""

    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", _("Log-in")
        LOGIN_FAILED = "login_failed", _("Failed log-in")
        LOGIN_THROTTLED = "login_throttled", _("Log-in refused (too many failures)")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        TOKEN_CREATED = "token_created", _("API token created")
        ROLE_GRANTED = "role_granted", _("Role granted")
        ROLE_REVOKED = "role_revoked", _("Role withdrawn")
        PARAMETER_CHANGED = "parameter_changed", _("Parameter changed")
        UNITS_ISSUED = "units_issued", _("Units issued")
        UNITS_CANCELLED = "units_cancelled", _("Units cancelled")
        ALERT_REVIEWED = "alert_reviewed", _("Market alert reviewed")
        OFFSET_PROFILE = "offset_profile", _("Offset profile recorded")
        CONTENT_PUBLISHED = "content_published", _("Content published")
        CONTENT_UNPUBLISHED = "content_unpublished", _("Content withdrawn")
        ADMIN_ACTION = "admin_action", _("Back-office change")

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("event"), max_length=30, choices=Kind.choices, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("person")
    )
    username = models.CharField(_("user name"), max_length=150, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    target = models.CharField(_("object"), max_length=200, blank=True)
    detail = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.username} {self.target}"
