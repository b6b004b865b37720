"""Information service (notices, methodology and guidance documents, templates) and the registry of
demonstration projects with their outcomes, photos and cooperation requests (town plan 二(二)3: a platform
"集信息化、投融资、示范合作等功能")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Organisation
from lowcarbon.info.domain import content
from lowcarbon.pv.models import Community, PVSystem


def current_lang() -> str:
    """ "en" when the page is English, else "zh" (Chinese first)."""
    return "en" if (get_language() or "").startswith("en") else "zh"


class Article(models.Model):
    """A notice, methodology or guidance document or a template, written by content editors in Chinese and/or
    English. Public once published and its publication time has come (a future time schedules it)."""

    class Category(models.TextChoices):
        POLICY = "policy", _("Policy")
        NEWS = "news", _("News")
        METHODOLOGY = "methodology", _("Methodology")
        GUIDANCE = "guidance", _("Guidance")
        TEMPLATE = "template", _("Template")

    category = models.CharField(_("category"), max_length=20, choices=Category.choices, db_index=True)
    title_zh = models.CharField(_("title (Chinese)"), max_length=content.TITLE_MAX, blank=True)
    title_en = models.CharField(_("title (English)"), max_length=content.TITLE_MAX, blank=True)
    body_zh = models.TextField(_("text (Chinese)"), blank=True)
    body_en = models.TextField(_("text (English)"), blank=True)
    published = models.BooleanField(_("published"), default=False, db_index=True)
    publish_at = models.DateTimeField(_("publication time"), null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("last edited by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last edited at"), auto_now=True)

    class Meta:
        verbose_name = _("notice or document")
        verbose_name_plural = _("notices and documents")
        ordering = ["-publish_at", "-pk"]

    def __str__(self) -> str:
        return self.title_zh or self.title_en

    @property
    def title(self) -> content.Picked:
        return content.pick({"zh": self.title_zh, "en": self.title_en}, current_lang())

    @property
    def body(self) -> content.Picked:
        return content.pick({"zh": self.body_zh, "en": self.body_en}, current_lang())

    @property
    def summary(self) -> str:
        return content.summary(self.body.text)

    @property
    def is_public(self) -> bool:
        return content.is_public(self.published, self.publish_at, timezone.now())

    @property
    def is_scheduled(self) -> bool:
        return self.published and self.publish_at is not None and self.publish_at > timezone.now()


class ArticleRevision(models.Model):
    """The text of a notice as saved at one time, with who saved it: the history of changes."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField(_("revision"))
    category = models.CharField(_("category"), max_length=20, choices=Article.Category.choices)
    title_zh = models.CharField(_("title (Chinese)"), max_length=content.TITLE_MAX, blank=True)
    title_en = models.CharField(_("title (English)"), max_length=content.TITLE_MAX, blank=True)
    body_zh = models.TextField(_("text (Chinese)"), blank=True)
    body_en = models.TextField(_("text (English)"), blank=True)
    action = models.CharField(_("action"), max_length=20)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    edited_at = models.DateTimeField(_("saved at"), auto_now_add=True)

    class Meta:
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="info_revision_unique")]


class Attachment(models.Model):
    """A file attached to a notice (document, template). Stored under a random name; served only through the
    platform, and to the public only while the notice is public."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(_("file"), upload_to="info/attachments/%Y/")
    original_name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.original_name


class DemoProject(models.Model):
    """A demonstration project of the town (near-zero-carbon community, smart-manufacturing line, green building,
    PV showcase) that other towns and companies may ask to visit or cooperate with."""

    class Kind(models.TextChoices):
        NEAR_ZERO_COMMUNITY = "near_zero_community", _("Near-zero-carbon community")
        SMART_MANUFACTURING = "smart_manufacturing", _("Smart-manufacturing line")
        GREEN_BUILDING = "green_building", _("Green building")
        PV_SHOWCASE = "pv_showcase", _("PV showcase")
        OTHER = "other", _("Other")

    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices, db_index=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    community = models.ForeignKey(
        Community, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("community")
    )
    location = models.CharField(_("location"), max_length=300, blank=True)
    owner_org = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="demo_projects",
        verbose_name=_("owner organisation"),
    )
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="demo_projects",
        verbose_name=_("responsible person on the platform"),
        help_text=_("Receives the cooperation requests; if empty, the owner organisation's members do."),
    )
    contact_name = models.CharField(_("contact person"), max_length=100, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    started_on = models.DateField(_("in operation since"), null=True, blank=True)
    pv_systems = models.ManyToManyField(
        PVSystem, blank=True, related_name="demo_projects", verbose_name=_("linked PV systems")
    )
    published = models.BooleanField(_("published"), default=False, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last edited at"), auto_now=True)

    class Meta:
        verbose_name = _("demonstration project")
        verbose_name_plural = _("demonstration projects")
        ordering = ["kind", "pk"]

    def __str__(self) -> str:
        return self.name_zh or self.name_en

    @property
    def name(self) -> content.Picked:
        return content.pick({"zh": self.name_zh, "en": self.name_en}, current_lang())

    @property
    def description(self) -> content.Picked:
        return content.pick({"zh": self.description_zh, "en": self.description_en}, current_lang())

    @property
    def summary(self) -> str:
        return content.summary(self.description.text)


class Outcome(models.Model):
    """A measured outcome typed in for a project without platform data (indicator, value, unit, period and the
    source it comes from). Outcomes of linked PV systems are computed, never typed."""

    project = models.ForeignKey(DemoProject, on_delete=models.CASCADE, related_name="outcomes")
    indicator_zh = models.CharField(_("indicator (Chinese)"), max_length=120, blank=True)
    indicator_en = models.CharField(_("indicator (English)"), max_length=120, blank=True)
    value = models.DecimalField(_("value"), max_digits=16, decimal_places=3)
    unit = models.CharField(_("unit"), max_length=30)
    period = models.CharField(_("period"), max_length=40)
    source = models.CharField(_("source"), max_length=300)

    class Meta:
        verbose_name = _("outcome")
        verbose_name_plural = _("outcomes")
        ordering = ["pk"]

    @property
    def indicator(self) -> content.Picked:
        return content.pick({"zh": self.indicator_zh, "en": self.indicator_en}, current_lang())


class Photo(models.Model):
    """A photo of a project, re-encoded on upload (metadata such as GPS position removed) with a thumbnail."""

    project = models.ForeignKey(DemoProject, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(_("image"), upload_to="info/photos/%Y/")
    thumbnail = models.FileField(_("thumbnail"), upload_to="info/photos/%Y/")
    content_type = models.CharField(max_length=30)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    caption_zh = models.CharField(_("caption (Chinese)"), max_length=200, blank=True)
    caption_en = models.CharField(_("caption (English)"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["pk"]

    @property
    def caption(self) -> content.Picked:
        return content.pick({"zh": self.caption_zh, "en": self.caption_en}, current_lang())


class CooperationRequest(models.Model):
    """A request from another town or a company to visit or cooperate with a project; no log-in needed. Routed
    to the project's owner, who marks it answered."""

    class State(models.TextChoices):
        NEW = "new", pgettext_lazy("cooperation request", "New")
        ANSWERED = "answered", pgettext_lazy("cooperation request", "Answered")

    project = models.ForeignKey(
        DemoProject, on_delete=models.CASCADE, related_name="requests", verbose_name=_("project")
    )
    name = models.CharField(_("your name"), max_length=100)
    organisation = models.CharField(_("organisation"), max_length=200)
    contact = models.CharField(_("phone or e-mail"), max_length=120)
    message = models.TextField(_("message"), max_length=3000)
    language = models.CharField(max_length=10, blank=True)
    sender_ip = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.NEW)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answer_note = models.CharField(_("note on the answer"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("cooperation request")
        verbose_name_plural = _("cooperation requests")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["sender_ip", "created_at"], name="info_request_ip_idx")]
