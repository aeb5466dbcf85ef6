"""Just enough Chinese administrative geography for the simulator to look plausible.

The real EMS derives sorting codes and 大头笔 from its own address database; we only need stable, believable
values, so postcode prefixes stand in for it (郑州 → 450, as on real Zhengzhou labels).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# Full official names of the 31 mainland provincial-level divisions with the 3-digit postcode prefix of the
# capital, used when the city is not in CITY_POSTCODES.
PROVINCES: dict[str, str] = {
    "北京市": "100",
    "天津市": "300",
    "河北省": "050",
    "山西省": "030",
    "内蒙古自治区": "010",
    "辽宁省": "110",
    "吉林省": "130",
    "黑龙江省": "150",
    "上海市": "200",
    "江苏省": "210",
    "浙江省": "310",
    "安徽省": "230",
    "福建省": "350",
    "江西省": "330",
    "山东省": "250",
    "河南省": "450",
    "湖北省": "430",
    "湖南省": "410",
    "广东省": "510",
    "广西壮族自治区": "530",
    "海南省": "570",
    "重庆市": "400",
    "四川省": "610",
    "贵州省": "550",
    "云南省": "650",
    "西藏自治区": "850",
    "陕西省": "710",
    "甘肃省": "730",
    "青海省": "810",
    "宁夏回族自治区": "750",
    "新疆维吾尔自治区": "830",
}

MAINLAND_PROVINCES: frozenset[str] = frozenset(PROVINCES)

# Regions that exist in addresses but that the domestic contract API does not serve.
OTHER_REGIONS: tuple[str, ...] = ("香港特别行政区", "澳门特别行政区", "台湾省")

# Henan in full (the halls this project starts with), plus a few large cities elsewhere.
CITY_POSTCODES: dict[str, str] = {
    "郑州": "450",
    "开封": "475",
    "洛阳": "471",
    "平顶山": "467",
    "安阳": "455",
    "鹤壁": "458",
    "新乡": "453",
    "焦作": "454",
    "濮阳": "457",
    "许昌": "461",
    "漯河": "462",
    "三门峡": "472",
    "南阳": "473",
    "商丘": "476",
    "信阳": "464",
    "周口": "466",
    "驻马店": "463",
    "济源": "459",
    "深圳": "518",
    "苏州": "215",
    "青岛": "266",
    "大连": "116",
    "厦门": "361",
    "宁波": "315",
    "无锡": "214",
    "东莞": "523",
}

_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_CITY_SUFFIXES = ("市", "地区", "盟", "自治州")
_COUNTY_SUFFIXES = ("自治县", "区", "县", "旗", "市")


def _strip(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def short_province(name: str) -> str:
    return _strip(name.strip(), _PROVINCE_SUFFIXES)


def short_city(name: str) -> str:
    return _strip(name.strip(), _CITY_SUFFIXES)


def short_county(name: str) -> str:
    return _strip(name.strip(), _COUNTY_SUFFIXES)


def canonical_province(name: str) -> str | None:
    """The full official name for a full or short province name; None when it is not one we know."""
    name = name.strip()
    if not name:
        return None
    for full in (*PROVINCES, *OTHER_REGIONS):
        if name == full or short_province(full) == short_province(name):
            return full
    return None


def in_service(prov: str, service_provinces: frozenset[str]) -> bool:
    full = canonical_province(prov)
    return full is not None and full in service_provinces


@dataclass(frozen=True, slots=True)
class Place:
    prov: str
    city: str
    county: str

    @property
    def city_label(self) -> str:
        # Municipalities are often written with city "市辖区" or the municipality itself.
        city = self.city.strip()
        if not city or city in {"市辖区", "县", "省直辖县级行政区划"}:
            return short_province(self.prov)
        return short_city(city)

    @property
    def full_city(self) -> str:
        city = self.city.strip()
        if not city or city in {"市辖区", "县", "省直辖县级行政区划"}:
            return canonical_province(self.prov) or self.prov
        return city

    @property
    def postcode_prefix(self) -> str:
        prefix = CITY_POSTCODES.get(self.city_label)
        if prefix:
            return prefix
        return PROVINCES.get(canonical_province(self.prov) or "", "100")

    def county_number(self, modulo: int) -> int:
        """A stable small number for the county, so codes do not change between runs."""
        return zlib.crc32(f"{self.prov}|{self.city}|{self.county}".encode()) % modulo

    @property
    def station_name(self) -> str:
        return f"{self.full_city}{self.county.strip()}揽投部"

    @property
    def station_code(self) -> str:
        return f"{self.postcode_prefix}{self.county_number(99) + 1:03d}00"

    @property
    def hub_name(self) -> str:
        return f"{self.city_label}中心"

    @property
    def hub_code(self) -> str:
        return f"{self.postcode_prefix}00900"


def routing(place: Place, postcode: str | None = None) -> dict[str, str]:
    """Sorting and 大头笔 fields of a 020003 answer, derived from the receiver's address."""
    prefix = postcode[:3] if postcode and len(postcode) == 6 and postcode.isdigit() else place.postcode_prefix
    n = place.county_number(10_000)
    county = short_county(place.county) if place.county.strip() else ""
    return {
        "routeCode": f"{prefix}-{n % 100:02d}-{(n // 100) % 100:02d}",
        "packageCode": f"{prefix}00900",
        "packageCodeName": place.hub_name,
        "markDestinationCode": f"{prefix}{n % 1000:03d}",
        "markDestinationName": f"{place.city_label}{county} {prefix}",
    }


def split_address(whole: str) -> dict[str, str]:
    """060001: split a whole address into prov / city / county / detail, the way a person would read it."""
    text = whole.strip()
    prov = ""
    for full in (*PROVINCES, *OTHER_REGIONS):
        for candidate in (full, short_province(full)):
            if text.startswith(candidate):
                prov = full
                text = text[len(candidate) :]
                break
        if prov:
            break
    city = county = ""
    if prov in {"北京市", "天津市", "上海市", "重庆市"}:
        city = prov
        if text.startswith(prov):
            text = text[len(prov) :]
    else:
        m = re.match(r"^(.+?(?:自治州|地区|盟|市))", text)
        if m:
            city = m.group(1)
            text = text[len(city) :]
    m = re.match(r"^(.+?(?:自治县|区|县|旗|市))", text)
    if m and len(m.group(1)) <= 8:
        county = m.group(1)
        text = text[len(county) :]
    return {"wholeAddress": whole, "prov": prov, "city": city, "county": county, "address": text}
