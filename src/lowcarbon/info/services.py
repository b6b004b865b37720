"""Services of the information service and the demonstration-project registry.

Each `do_*` function authorises the person, checks every value, runs in one transaction and changes nothing when
it refuses (`InfoRefused`: a list of (field, translated message) naming the field and the reason). Views, API and
demo data call these functions; they never write the models directly.
"""

from __future__ import annotations

import io
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from lowcarbon.accounts.models import Membership, Organisation, Role, RoleGrant, User
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.info.domain import content
from lowcarbon.info.models import (
    Article,
    ArticleRevision,
    Attachment,
    CooperationRequest,
    DemoProject,
    Outcome,
    Photo,
)
from lowcarbon.pv.models import Community, PVSystem

#: attachments of notices: office documents, PDF, CSV/text templates and images, at most 20 MB
ATTACHMENT_EXTENSIONS = (
    ".pdf",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".pptx",
    ".csv",
    ".txt",
    ".png",
    ".jpg",
    ".jpeg",
)
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
#: project photos: JPEG, PNG or WebP, at most 8 MB and 40 megapixels; thumbnails fit in 480 × 360
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTO_MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (480, 360)
PHOTO_MAX_SIDE = 2400
#: cooperation requests: at most this many from one address per hour
REQUESTS_PER_HOUR = getattr(settings, "LOWCARBON_INFO_REQUESTS_PER_HOUR", 5)
NOTIFICATION_MAX = 300

# --- messages ----------------------------------------------------------------------------------------------------

FIELD_LABELS: dict[str, Any] = {
    "category": _("Category"),
    "title_zh": _("Title (Chinese)"),
    "title_en": _("Title (English)"),
    "body_zh": _("Text (Chinese)"),
    "body_en": _("Text (English)"),
    "publish_at": _("Publication time"),
    "file": _("File"),
    "kind": _("Kind"),
    "name_zh": _("Name (Chinese)"),
    "name_en": _("Name (English)"),
    "description_zh": _("Description (Chinese)"),
    "description_en": _("Description (English)"),
    "community": _("Community"),
    "location": pgettext_lazy("project site", "Location"),
    "owner_org": _("Owner organisation"),
    "owner_user": _("Responsible person on the platform"),
    "contact_name": _("Contact person"),
    "contact_phone": _("Contact phone"),
    "contact_email": _("Contact e-mail"),
    "started_on": _("In operation since"),
    "pv_systems": _("Linked PV systems"),
    "indicator_zh": _("Indicator (Chinese)"),
    "indicator_en": _("Indicator (English)"),
    "value": _("Value"),
    "unit": _("Unit"),
    "period": _("Period"),
    "source": _("Source"),
    "caption_zh": _("Caption (Chinese)"),
    "caption_en": _("Caption (English)"),
    "name": _("Your name"),
    "organisation": _("Organisation"),
    "contact": _("Phone or e-mail"),
    "message": pgettext_lazy("cooperation request", "Message"),
    "website": _("Website"),
    "answer_note": _("Note on the answer"),
    "__all__": _("Request"),
}

REASONS: dict[str, Any] = {
    content.REQUIRED: _("this field is required"),
    content.TOO_LONG: _("at most %(max)s characters"),
    content.TITLE_NEEDS_BODY: _("a title in this language needs its text before publication"),
    content.BODY_NEEDS_TITLE: _("a text in this language needs a title in the same language"),
    content.NO_LANGUAGE: _("write the title and text in Chinese, English or both"),
    content.FILE_TYPE: _("files of type “%(ext)s” are not accepted; accepted: %(allowed)s"),
    content.FILE_SIZE: _("the file is larger than %(max)s MB"),
    content.FILE_EMPTY: _("the file is empty"),
    content.FILE_CONTENT: _("the content of the file is not a valid %(ext)s file"),
    "not_image": _("the file is not a readable JPEG, PNG or WebP image"),
    "too_many_pixels": _("the image has more than %(max)s megapixels"),
    "choice": _("“%(value)s” is not one of the choices"),
    "unknown": _("“%(value)s” was not found"),
    "not_member": _("the person must belong to the owner organisation"),
    "number": _("“%(value)s” is not a number"),
    "date": _("“%(value)s” is not a date; write it as YYYY-MM-DD"),
    "datetime": _("“%(value)s” is not a date and time; write it as YYYY-MM-DD HH:MM"),
    "email": _("“%(value)s” is not an e-mail address"),
    "contact": _("give a phone number or an e-mail address"),
    "honeypot": _("the request looks automated and was not sent; leave the website field empty"),
    "rate_limit": _(
        "too many requests from your network in the last hour (at most %(max)s); please try again later"
    ),
    "not_public": _("the project is not published"),
    "no_name": _("write the name in Chinese, English or both"),
}


class InfoRefused(DomainError):
    """A refused change: every (field, message) found, nothing changed."""

    def __init__(self, problems: list[tuple[str, str]], code: str = "invalid") -> None:
        self.problems = problems
        message = gettext("; ").join(
            gettext("%(field)s: %(reason)s") % {"field": label_of(f), "reason": m} for f, m in problems
        )
        super().__init__(code, message, field=problems[0][0])

    def by_field(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for f, m in self.problems:
            out[f].append(m)
        return dict(out)


class NotAllowed(DomainError):
    def __init__(self) -> None:
        super().__init__("not_allowed", gettext("You may not do this."))


def label_of(field: str) -> str:
    return str(FIELD_LABELS.get(field, field))


def reason(code: str, **args: Any) -> str:
    text = str(REASONS[code])
    return text % args if args else text


def _refuse(problems: Iterable[content.Problem]) -> None:
    found = [(p.field, reason(p.code, **dict(p.args))) for p in problems]
    if found:
        raise InfoRefused(found)


# --- who may do what ---------------------------------------------------------------------------------------------


def is_editor(user: Any) -> bool:
    """Content editors and registry administrators write notices and maintain the project registry."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.has_role(Role.CONTENT_EDITOR) or user.is_registry_admin)
    )


def _require_editor(user: Any) -> None:
    if not is_editor(user):
        raise NotAllowed()


def public_articles() -> QuerySet[Article]:
    """Published notices whose publication time has come, newest first."""
    return Article.objects.filter(published=True, publish_at__lte=timezone.now()).order_by(
        "-publish_at", "-pk"
    )


def visible_articles(user: Any) -> QuerySet[Article]:
    """Editors see every notice (drafts and scheduled ones too); everyone else the public ones."""
    if is_editor(user):
        return Article.objects.all().order_by("-updated_at", "-pk")
    return public_articles()


def search_articles(qs: QuerySet[Article], query: str = "", category: str = "") -> QuerySet[Article]:
    """Filter by category and by words found in the title or text of either language."""
    if category in Article.Category.values:
        qs = qs.filter(category=category)
    for word in query.split()[:8]:
        qs = qs.filter(
            Q(title_zh__icontains=word)
            | Q(title_en__icontains=word)
            | Q(body_zh__icontains=word)
            | Q(body_en__icontains=word)
        )
    return qs


def attachment_visible(user: Any, attachment: Attachment) -> bool:
    return attachment.article.is_public or is_editor(user)


def public_projects() -> QuerySet[DemoProject]:
    return DemoProject.objects.filter(published=True)


def visible_projects(user: Any) -> QuerySet[DemoProject]:
    if is_editor(user):
        return DemoProject.objects.all()
    return public_projects()


def photo_visible(user: Any, photo: Photo) -> bool:
    return photo.project.published or is_editor(user)


def owns_project(user: Any, project: DemoProject) -> bool:
    """The responsible person or a member of the owner organisation."""
    if user is None or not user.is_authenticated:
        return False
    if project.owner_user_id == user.pk:
        return True
    return Membership.objects.filter(user=user, organisation_id=project.owner_org_id).exists()


def owned_projects(user: Any) -> QuerySet[DemoProject]:
    if user is None or not user.is_authenticated:
        return DemoProject.objects.none()
    return DemoProject.objects.filter(Q(owner_user=user) | Q(owner_org__memberships__user=user)).distinct()


def inbox_requests(user: Any) -> QuerySet[CooperationRequest]:
    """Requests to the person's projects; registry administrators and content editors see all."""
    qs = CooperationRequest.objects.select_related("project", "answered_by")
    if user is None or not user.is_authenticated:
        return qs.none()
    if is_editor(user):
        return qs.all()
    return qs.filter(project__in=owned_projects(user))


def may_see_inbox(user: Any) -> bool:
    return is_editor(user) or owned_projects(user).exists()


# --- notices -----------------------------------------------------------------------------------------------------

ARTICLE_TEXT_FIELDS = ("title_zh", "title_en", "body_zh", "body_en")


def _clean_text(data: Mapping[str, Any], fields: Iterable[str]) -> dict[str, str]:
    return {f: str(data.get(f) or "").replace("\r\n", "\n").strip() for f in fields}


def _check_article(category: str, text: Mapping[str, str], *, for_publication: bool) -> None:
    problems = []
    if category not in Article.Category.values:
        problems.append(content.Problem("category", "choice", (("value", category or "—"),)))
    problems += content.check_article(
        {"zh": text["title_zh"], "en": text["title_en"]},
        {"zh": text["body_zh"], "en": text["body_en"]},
        for_publication=for_publication,
    )
    _refuse(problems)


def _revision(article: Article, actor: User, action: str) -> None:
    last = article.revisions.order_by("-number").values_list("number", flat=True).first() or 0
    ArticleRevision.objects.create(
        article=article,
        number=last + 1,
        category=article.category,
        title_zh=article.title_zh,
        title_en=article.title_en,
        body_zh=article.body_zh,
        body_en=article.body_en,
        action=action,
        edited_by=actor,
    )


REVISION_ACTIONS: dict[str, Any] = {
    "created": _("created"),
    "edited": _("edited"),
    "published": _("published"),
    "scheduled": _("scheduled"),
    "unpublished": _("withdrawn from publication"),
}


def do_save_article(actor: User, data: Mapping[str, Any], article: Article | None = None) -> Article:
    """Create a draft notice, or save changes to one (a published notice keeps the publication rules)."""
    _require_editor(actor)
    category = str(data.get("category") or (article.category if article else "")).strip()
    text = _clean_text(data, ARTICLE_TEXT_FIELDS)
    _check_article(category, text, for_publication=bool(article and article.published))
    with transaction.atomic():
        if article is None:
            article = Article(created_by=actor)
            action = "created"
        else:
            article = Article.objects.select_for_update().get(pk=article.pk)
            action = "edited"
        article.category = category
        for f, v in text.items():
            setattr(article, f, v)
        article.updated_by = actor
        article.save()
        _revision(article, actor, action)
    return article


def parse_datetime_local(value: str) -> datetime | None:
    """'YYYY-MM-DD HH:MM' or 'YYYY-MM-DDTHH:MM' (Asia/Shanghai unless an offset is given); '' is None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise InfoRefused([("publish_at", reason("datetime", value=value))])
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_default_timezone())
    return when


def do_publish_article(actor: User, article: Article, publish_at: datetime | None = None) -> Article:
    """Publish now, or at `publish_at` (a future time schedules the publication; the notice is not public
    before it)."""
    _require_editor(actor)
    with transaction.atomic():
        article = Article.objects.select_for_update().get(pk=article.pk)
        text = {f: getattr(article, f) for f in ARTICLE_TEXT_FIELDS}
        _check_article(article.category, text, for_publication=True)
        now = timezone.now()
        article.published = True
        article.publish_at = publish_at or now
        article.updated_by = actor
        article.save()
        _revision(article, actor, "scheduled" if article.publish_at > now else "published")
    return article


def do_unpublish_article(actor: User, article: Article) -> Article:
    """Take a notice back to draft: it and its attachments stop being public."""
    _require_editor(actor)
    with transaction.atomic():
        article = Article.objects.select_for_update().get(pk=article.pk)
        article.published = False
        article.updated_by = actor
        article.save()
        _revision(article, actor, "unpublished")
    return article


def _head(uploaded: Any, n: int = 4096) -> bytes:
    uploaded.seek(0)
    head = uploaded.read(n)
    uploaded.seek(0)
    return bytes(head)


def _safe_name(name: str) -> str:
    base = (name or "file").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')[:255] or "file"


def do_add_attachment(actor: User, article: Article, uploaded: Any) -> Attachment:
    """Attach a file to a notice; it is stored under a random name and checked against its extension."""
    _require_editor(actor)
    if uploaded is None:
        raise InfoRefused([("file", reason(content.REQUIRED))])
    original = _safe_name(uploaded.name)
    _refuse(
        content.check_upload(
            original, uploaded.size or 0, _head(uploaded), ATTACHMENT_EXTENSIONS, ATTACHMENT_MAX_BYTES
        )
    )
    ext = original.rsplit(".", 1)[-1].lower()
    with transaction.atomic():
        att = Attachment(article=article, original_name=original, size=uploaded.size, uploaded_by=actor)
        att.file.save(f"{secrets.token_hex(12)}.{ext}", uploaded, save=False)
        att.save()
    return att


def do_delete_attachment(actor: User, attachment: Attachment) -> None:
    _require_editor(actor)
    with transaction.atomic():
        name = attachment.file.name
        storage = attachment.file.storage
        attachment.delete()
        transaction.on_commit(lambda: storage.delete(name))


# --- demonstration projects ---------------------------------------------------------------------------------------

PROJECT_TEXT_FIELDS = (
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "location",
    "contact_name",
    "contact_phone",
    "contact_email",
)
PROJECT_LIMITS = {
    "name_zh": 200,
    "name_en": 200,
    "description_zh": content.BODY_MAX,
    "description_en": content.BODY_MAX,
    "location": 300,
    "contact_name": 100,
    "contact_phone": 30,
    "contact_email": 254,
}


def _is_email(value: str) -> bool:
    from django.core.validators import validate_email

    try:
        validate_email(value)
    except Exception:
        return False
    return True


def _parse_date(value: Any, field: str, problems: list[content.Problem]) -> date | None:
    if isinstance(value, date):
        return value
    value = str(value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(content.Problem(field, "date", (("value", value),)))
        return None


def _system_codes(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).strip() for v in (value or []) if str(v).strip()]


def do_save_project(actor: User, data: Mapping[str, Any], project: DemoProject | None = None) -> DemoProject:
    """Create or change a demonstration project (saved unpublished when new)."""
    _require_editor(actor)
    text = _clean_text(data, PROJECT_TEXT_FIELDS)
    problems: list[content.Problem] = []
    kind = str(data.get("kind") or "").strip()
    if kind not in DemoProject.Kind.values:
        problems.append(content.Problem("kind", "choice", (("value", kind or "—"),)))
    for f, limit in PROJECT_LIMITS.items():
        if len(text[f]) > limit:
            problems.append(content.Problem(f, content.TOO_LONG, (("max", str(limit)),)))
    if not (text["name_zh"] or text["name_en"]):
        problems.append(content.Problem("name_zh", "no_name"))
    for lang in content.LANGS:
        if text[f"description_{lang}"] and not text[f"name_{lang}"]:
            problems.append(content.Problem(f"name_{lang}", content.BODY_NEEDS_TITLE))
    if text["contact_email"] and not _is_email(text["contact_email"]):
        problems.append(content.Problem("contact_email", "email", (("value", text["contact_email"]),)))
    community = None
    community_code = str(data.get("community") or "").strip()
    if community_code:
        community = Community.objects.filter(code=community_code).first()
        if community is None:
            problems.append(content.Problem("community", "unknown", (("value", community_code),)))
    owner_org = None
    org_value = str(data.get("owner_org") or "").strip()
    if not org_value:
        problems.append(content.Problem("owner_org", content.REQUIRED))
    else:
        owner_org = Organisation.objects.filter(pk=int(org_value)).first() if org_value.isdigit() else None
        if owner_org is None:
            problems.append(content.Problem("owner_org", "unknown", (("value", org_value),)))
    owner_user = None
    user_value = str(data.get("owner_user") or "").strip()
    if user_value:
        owner_user = User.objects.filter(username=user_value).first()
        if owner_user is None:
            problems.append(content.Problem("owner_user", "unknown", (("value", user_value),)))
        elif (
            owner_org is not None
            and not Membership.objects.filter(user=owner_user, organisation=owner_org).exists()
        ):
            problems.append(content.Problem("owner_user", "not_member"))
    started_on = _parse_date(data.get("started_on"), "started_on", problems)
    codes = _system_codes(data.get("pv_systems"))
    systems = list(PVSystem.objects.filter(code__in=codes))
    for code in sorted(set(codes) - {s.code for s in systems}):
        problems.append(content.Problem("pv_systems", "unknown", (("value", code),)))
    _refuse(problems)
    with transaction.atomic():
        if project is None:
            project = DemoProject(created_by=actor)
        for f, v in text.items():
            setattr(project, f, v)
        project.kind = kind
        project.community = community
        project.owner_org = owner_org  # type: ignore[assignment]
        project.owner_user = owner_user
        project.started_on = started_on
        project.save()
        project.pv_systems.set(systems)
    return project


def do_set_project_published(actor: User, project: DemoProject, published: bool) -> DemoProject:
    _require_editor(actor)
    with transaction.atomic():
        project = DemoProject.objects.select_for_update().get(pk=project.pk)
        if published and not (project.name_zh or project.name_en):
            raise InfoRefused([("name_zh", reason("no_name"))])
        project.published = published
        project.save(update_fields=["published", "updated_at"])
    return project


def do_add_outcome(actor: User, project: DemoProject, data: Mapping[str, Any]) -> Outcome:
    """A typed-in outcome with its source (for what the platform does not meter)."""
    _require_editor(actor)
    text = _clean_text(data, ("indicator_zh", "indicator_en", "unit", "period", "source", "value"))
    problems: list[content.Problem] = []
    if not (text["indicator_zh"] or text["indicator_en"]):
        problems.append(content.Problem("indicator_zh", "no_name"))
    for f, limit in (
        ("indicator_zh", 120),
        ("indicator_en", 120),
        ("unit", 30),
        ("period", 40),
        ("source", 300),
    ):
        if f in ("unit", "period", "source") and not text[f]:
            problems.append(content.Problem(f, content.REQUIRED))
        elif len(text[f]) > limit:
            problems.append(content.Problem(f, content.TOO_LONG, (("max", str(limit)),)))
    value = None
    if not text["value"]:
        problems.append(content.Problem("value", content.REQUIRED))
    else:
        try:
            value = Decimal(text["value"].replace(",", ""))
            if not value.is_finite() or abs(value) >= Decimal("1e13"):
                raise InvalidOperation
            value = value.quantize(Decimal("0.001"))
        except (InvalidOperation, ValueError):
            problems.append(content.Problem("value", "number", (("value", text["value"]),)))
    _refuse(problems)
    return Outcome.objects.create(
        project=project,
        indicator_zh=text["indicator_zh"],
        indicator_en=text["indicator_en"],
        value=value,
        unit=text["unit"],
        period=text["period"],
        source=text["source"],
    )


def do_delete_outcome(actor: User, outcome: Outcome) -> None:
    _require_editor(actor)
    outcome.delete()


def _process_image(uploaded: Any) -> tuple[bytes, bytes, str, int, int]:
    """Re-encode the image (drops metadata such as the GPS position; respects the camera orientation) and make a
    thumbnail. Returns (image bytes, thumbnail bytes, extension, width, height)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    uploaded.seek(0)
    data = uploaded.read()
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            if probe.width * probe.height > PHOTO_MAX_PIXELS:
                raise InfoRefused([("file", reason("too_many_pixels", max=PHOTO_MAX_PIXELS // 1_000_000))])
            probe.verify()
        if fmt not in ("JPEG", "PNG", "WEBP"):
            raise InfoRefused([("file", reason("not_image"))])
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            keep_png = fmt == "PNG"
            if not keep_png and img.mode not in ("RGB", "L"):
                img = _flatten(img)
            img.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
            out = io.BytesIO()
            if keep_png:
                img.save(out, format="PNG", optimize=True)
            else:
                img.save(out, format="JPEG", quality=88)
            thumb = _flatten(img) if img.mode not in ("RGB", "L") else img.copy()
            thumb.thumbnail(THUMBNAIL_SIZE)
            tout = io.BytesIO()
            thumb.save(tout, format="JPEG", quality=82)
            return out.getvalue(), tout.getvalue(), ("png" if keep_png else "jpg"), img.width, img.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InfoRefused([("file", reason("not_image"))])


def _flatten(img: Any) -> Any:
    from PIL import Image

    rgba = img.convert("RGBA")
    bg = Image.new("RGB", rgba.size, (255, 255, 255))
    bg.paste(rgba, mask=rgba.split()[-1])
    return bg


def do_add_photo(actor: User, project: DemoProject, uploaded: Any, data: Mapping[str, Any]) -> Photo:
    """Add a photo to a project after checking its type, size and content."""
    _require_editor(actor)
    if uploaded is None:
        raise InfoRefused([("file", reason(content.REQUIRED))])
    captions = _clean_text(data, ("caption_zh", "caption_en"))
    problems = [
        content.Problem(f, content.TOO_LONG, (("max", "200"),)) for f, v in captions.items() if len(v) > 200
    ]
    problems += content.check_upload(
        _safe_name(uploaded.name), uploaded.size or 0, _head(uploaded), PHOTO_EXTENSIONS, PHOTO_MAX_BYTES
    )
    _refuse(problems)
    image, thumb, ext, width, height = _process_image(uploaded)
    stem = secrets.token_hex(12)
    with transaction.atomic():
        photo = Photo(
            project=project,
            content_type="image/png" if ext == "png" else "image/jpeg",
            width=width,
            height=height,
            uploaded_by=actor,
            **captions,
        )
        photo.image.save(f"{stem}.{ext}", ContentFile(image), save=False)
        photo.thumbnail.save(f"{stem}-thumb.jpg", ContentFile(thumb), save=False)
        photo.save()
    return photo


def do_delete_photo(actor: User, photo: Photo) -> None:
    _require_editor(actor)
    names = [photo.image.name, photo.thumbnail.name]
    storage = photo.image.storage
    with transaction.atomic():
        photo.delete()
        transaction.on_commit(lambda: [storage.delete(n) for n in names])


# --- outcomes computed from platform data -------------------------------------------------------------------------


@dataclass(frozen=True)
class ComputedOutcomes:
    """What the platform itself measured for a project's linked PV systems."""

    systems: list[PVSystem]
    capacity_kwp: Decimal
    meters: int
    years: list[content.YearOutcome]
    methods: list[tuple[str, str]]  # (methodology code, grid factor code) of the current results

    @property
    def total_generation_kwh(self) -> Decimal:
        return sum((y.generation_kwh for y in self.years), Decimal(0))

    @property
    def total_er_t(self) -> Decimal:
        return (sum((y.er_kg for y in self.years), Decimal(0)) / 1000).quantize(Decimal("0.01"))


def computed_outcomes(project: DemoProject) -> ComputedOutcomes | None:
    """Generation by calendar year from the linked systems' monthly meter rollups and avoided emissions from their
    current quantification results (never typed in); None when the project links no PV system."""
    from lowcarbon.methodology.models import Quantification
    from lowcarbon.pv.rollups import meters_by_system, monthly_generation

    systems = list(project.pv_systems.order_by("code"))
    if not systems:
        return None
    ids = [s.pk for s in systems]
    generation: dict[date, Decimal] = defaultdict(Decimal)
    for (_sid, month), g in monthly_generation(ids).items():
        generation[month] += g.energy_kwh
    avoided: dict[date, Decimal] = defaultdict(Decimal)
    methods: set[tuple[str, str]] = set()
    for month, kg, m_code, f_code in Quantification.objects.filter(
        system_id__in=ids, superseded_at__isnull=True
    ).values_list("month", "er_kg", "methodology__code", "factor__code"):
        avoided[month] += kg
        methods.add((m_code, f_code))
    return ComputedOutcomes(
        systems=systems,
        capacity_kwp=sum((s.capacity_kwp for s in systems), Decimal(0)),
        meters=sum(len(v) for v in meters_by_system(ids).values()),
        years=content.year_outcomes(generation, avoided),
        methods=sorted(methods),
    )


# --- cooperation requests ----------------------------------------------------------------------------------------

REQUEST_LIMITS = {"name": 100, "organisation": 200, "contact": 120, "message": 3000}

NOTIFICATION_MESSAGES: dict[str, Any] = {
    "request": _("New cooperation request for “%(project)s” from %(organisation)s (%(name)s)."),
}


def _notify(
    recipients: Iterable[User], key: str, project: DemoProject, args: dict[str, Any], link: str
) -> None:
    from lowcarbon.registry.models import Notification

    for user in recipients:
        lang = getattr(user, "preferred_language", "") or "zh-hans"
        with translation.override(lang):
            message = str(NOTIFICATION_MESSAGES[key]) % {**args, "project": project.name.text}
        if len(message) > NOTIFICATION_MAX:
            message = message[: NOTIFICATION_MAX - 1] + "…"
        Notification.objects.create(user=user, message=message, link=link)


def request_recipients(project: DemoProject) -> list[User]:
    """The responsible person; else the owner organisation's administrators (or members); else, so that no request
    goes unseen, the content editors and registry administrators."""
    if project.owner_user_id:
        return [project.owner_user]  # type: ignore[list-item]
    members = Membership.objects.filter(organisation_id=project.owner_org_id).select_related("user")
    admins = [m.user for m in members if m.level == Membership.Level.ADMIN]
    if admins or members:
        return admins or [m.user for m in members]
    ids = RoleGrant.objects.filter(role__in=[Role.CONTENT_EDITOR, Role.REGISTRY_ADMIN]).values_list(
        "user_id", flat=True
    )
    return list(User.objects.filter(pk__in=ids).order_by("pk"))


def do_send_request(
    project: DemoProject, data: Mapping[str, Any], *, sender_ip: str | None, language: str = ""
) -> CooperationRequest:
    """Record a cooperation request (no log-in) and notify the project's owner. Refused: unpublished project, a
    filled honeypot field, too many requests from the address in the last hour, missing or too long fields."""
    text = _clean_text(data, ("name", "organisation", "contact", "message", "website"))
    if not project.published:
        raise InfoRefused([("__all__", reason("not_public"))], code="not_public")
    if text["website"]:
        raise InfoRefused([("website", reason("honeypot"))], code="honeypot")
    problems: list[content.Problem] = []
    for f, limit in REQUEST_LIMITS.items():
        if not text[f]:
            problems.append(content.Problem(f, content.REQUIRED))
        elif len(text[f]) > limit:
            problems.append(content.Problem(f, content.TOO_LONG, (("max", str(limit)),)))
    contact = text["contact"]
    if contact and not (_is_email(contact) or sum(c.isdigit() for c in contact) >= 7):
        problems.append(content.Problem("contact", "contact"))
    _refuse(problems)
    with transaction.atomic():
        if sender_ip:
            since = timezone.now() - timedelta(hours=1)
            recent = CooperationRequest.objects.filter(sender_ip=sender_ip, created_at__gte=since).count()
            if content.rate_limited(recent, REQUESTS_PER_HOUR):
                raise InfoRefused(
                    [("__all__", reason("rate_limit", max=REQUESTS_PER_HOUR))], code="rate_limit"
                )
        req = CooperationRequest.objects.create(
            project=project,
            name=text["name"],
            organisation=text["organisation"],
            contact=contact,
            message=text["message"],
            language=language[:10],
            sender_ip=sender_ip or None,
        )
        link = reverse("info:inbox") + f"#request-{req.pk}"
        _notify(
            request_recipients(project),
            "request",
            project,
            {"organisation": req.organisation, "name": req.name},
            link,
        )
    return req


def do_mark_answered(actor: User, req: CooperationRequest, note: str = "") -> CooperationRequest:
    """The owner (or an administrator) records that the request was answered."""
    if not (is_editor(actor) or owns_project(actor, req.project)):
        raise NotAllowed()
    note = (note or "").strip()
    if len(note) > 500:
        raise InfoRefused([("answer_note", reason(content.TOO_LONG, max=500))])
    with transaction.atomic():
        req = CooperationRequest.objects.select_for_update().get(pk=req.pk)
        req.state = CooperationRequest.State.ANSWERED
        req.answered_at = timezone.now()
        req.answered_by = actor
        req.answer_note = note
        req.save()
    return req
