import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """Dashboard figures are cached briefly; each test starts and ends with an empty cache."""
    cache.clear()
    yield
    cache.clear()
