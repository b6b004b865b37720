"""Xiaolan's communities as data. Names: the 15 communities of Xiaolan Town before the 2021 merger with Dongsheng.
Coordinates are approximate community centres (±1 km), good for maps and for the clear-sky bound, not for
addresses."""

from __future__ import annotations

from decimal import Decimal

COMMUNITIES = [
    ("chengzhong", "城中社区", "Chengzhong", "22.6720", "113.2480"),
    ("dongqu", "东区社区", "Dongqu", "22.6700", "113.2620"),
    ("xiqu", "西区社区", "Xiqu", "22.6690", "113.2350"),
    ("nanqu", "南区社区", "Nanqu", "22.6560", "113.2500"),
    ("beiqu", "北区社区", "Beiqu", "22.6850", "113.2520"),
    ("jixi", "绩西社区", "Jixi", "22.6630", "113.2280"),
    ("shakou", "沙口社区", "Shakou", "22.6930", "113.2400"),
    ("baofeng", "宝丰社区", "Baofeng", "22.6450", "113.2420"),
    ("xinshi", "新市社区", "Xinshi", "22.6780", "113.2700"),
    ("yongning", "永宁社区", "Yongning", "22.7050", "113.2650"),
    ("lianfeng", "联丰社区", "Lianfeng", "22.6500", "113.2700"),
    ("liexiyi", "埒西一社区", "Liexiyi", "22.6560", "113.2300"),
    ("jiuzhouji", "九洲基社区", "Jiuzhouji", "22.6380", "113.2600"),
    ("zhuyuan", "竹源社区", "Zhuyuan", "22.6620", "113.2150"),
    ("shengfeng", "盛丰社区", "Shengfeng", "22.6900", "113.2800"),
]


def load_communities(Community) -> None:  # type: ignore[no-untyped-def]
    for code, zh, en, lat, lon in COMMUNITIES:
        Community.objects.update_or_create(
            code=code,
            defaults={"name_zh": zh, "name_en": en, "latitude": Decimal(lat), "longitude": Decimal(lon)},
        )
