"""Static files storage for production: content-hashed names (cached for ever by browsers) and gzip/brotli copies
served by WhiteNoise. A file missing from the manifest (static files not collected since it was added) is served
under its plain name rather than failing the page."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """CompressedManifestStaticFilesStorage that falls back to the unhashed name instead of raising."""

    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return str(super().stored_name(name))
        except ValueError:
            return name
