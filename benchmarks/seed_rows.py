"""The rows a real service would hold after months of work, generated (pure; benchmarks/seed.py writes them).

One shipment at a time, from a seeded ``random.Random``: its parties, cases, a full event history planned from
creation to its end (delivered, with failed attempts, late, returned, cancelled, voided at pickup, declined by the
applicant), cut at ``now`` — so recent shipments are in flight exactly as the pipeline leaves them — then the
proof of service frozen at delivery (logistics/domain/proof.py), complaints, ratings and follow-ups, and the
privacy purge applied to what ended more than ``purge_after`` ago (logistics/jobs/purge.py's rules). Carrier
wording comes from the EMS simulator's tables (signer and reason texts) and carriers/ems/codes.csv.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from labels.privacy import mask_address, mask_name, mask_phone, mask_text
from logistics.domain import proof
from logistics.domain.deadlines import due_by as count_due_by
from logistics.jobs.purge import PURGED_TEXT

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "carriers" / "simulator"
BEIJING_OFFSET = timedelta(hours=8)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TRACKING = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RESOLVED_AFTER = timedelta(days=4)  # halls decide on a parcel that came back within days

# District → (administrative code for case numbers, hall address). 12 districts × 5 bureaus = 60 departments.
DISTRICTS: dict[str, tuple[str, str]] = {
    "上街区": ("410106", "中心路132号"),
    "中原区": ("410102", "中原西路233号"),
    "二七区": ("410103", "航海中路68号"),
    "管城回族区": ("410104", "城东路100号"),
    "金水区": ("410105", "经三路60号"),
    "惠济区": ("410108", "开元路8号"),
    "中牟县": ("410122", "青年路18号"),
    "巩义市": ("410181", "新兴路52号"),
    "荥阳市": ("410182", "索河路1号"),
    "新密市": ("410183", "开阳路88号"),
    "新郑市": ("410184", "中华北路99号"),
    "登封市": ("410185", "少林大道116号"),
}
BUREAUS: dict[str, tuple[str, ...]] = {
    "市场监督管理局": ("食品经营许可证核发", "营业执照变更登记", "药品经营许可证换发", "特种设备使用登记"),
    "行政审批服务局": ("建筑工程施工许可证核发", "道路运输经营许可", "排水许可证核发", "建设工程规划许可"),
    "人力资源和社会保障局": ("社会保障卡补领", "职业资格证书核发", "劳务派遣经营许可", "退休审批"),
    "民政局": ("社会团体成立登记", "民办非企业单位登记", "养老机构备案", "残疾人两项补贴"),
    "卫生健康委员会": ("医疗机构执业许可证", "公共场所卫生许可证", "放射诊疗许可", "出生医学证明补发"),
}
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫")
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽晓明志国建华文军浩宇子轩一鸣俊杰"  # noqa: E501
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "195",
    "198",
    "199",
)
STREETS = (
    "济源路",
    "中心路",
    "新安路",
    "工业路",
    "汝南路",
    "淮阳路",
    "金屏路",
    "峡窝路",
    "建设路",
    "文化路",
    "农业路",
    "花园路",
    "经三路",
    "纬五路",
    "嵩山路",
    "航海路",
    "大学路",
    "桐柏路",
    "陇海路",
    "商城路",
    "紫荆山路",
    "东风路",
    "丰产路",
    "黄河路",
    "中州大道",
    "金水东路",
    "郑汴路",
    "南阳路",
    "秦岭路",
    "伏牛路",
)
ESTATES = ("家属院", "小区", "花园", "新村", "公寓", "苑", "佳园", "名门")
OTHER_CITIES = (
    ("河南省", "开封市", "龙亭区"),
    ("河南省", "洛阳市", "西工区"),
    ("河南省", "新乡市", "红旗区"),
    ("河南省", "许昌市", "魏都区"),
    ("北京市", "北京市", "海淀区"),
    ("广东省", "深圳市", "南山区"),
    ("上海市", "上海市", "浦东新区"),
    ("湖北省", "武汉市", "洪山区"),
)
COMPLAINT_TEXTS = {
    "delay": "材料寄出好几天了还没有收到，麻烦帮忙催一下。",
    "not_received": "页面显示已签收，但我本人并没有收到邮件。",
    "damaged": "收到的信封破损，里面少了一页材料。",
    "attitude": "投递员打电话态度很差，希望改进。",
    "other": "想改为到窗口领取，请联系我。",
}
ANSWERS = (
    "已联系EMS核实，邮件将于明日再次投递，请保持电话畅通。",
    "经核实已由家人代收，请向家人确认。",
    "已补寄缺失材料，给您带来不便深表歉意。",
    "已向EMS反映，投递员将改进服务。",
)
RATING_COMMENTS = (
    "送得很快，服务很好",
    "不用再跑一趟，方便",
    "比预计晚了两天",
    "快递员没打电话直接放驿站了",
    "材料完好，感谢",
    "太慢了，等了一个星期",
)
FOLLOW_UP_ACTIONS = (
    "已电话回访申请人，说明延误原因并致歉",
    "已约谈EMS揽投部，要求改进投递服务",
    "已核实情况，向申请人解释并取得谅解",
)
LEVEL_WEIGHTS = ((5, 70), (4, 18), (3, 7), (2, 3), (1, 2))


@dataclass(frozen=True)
class Department:
    name: str
    district: str
    code: str
    items: tuple[str, ...]
    hall: dict[str, str]
    windows: tuple[str, ...]
    payment_mode: str


def departments(count: int) -> list[Department]:
    out = []
    for i in range(count):
        district = list(DISTRICTS)[i % len(DISTRICTS)]
        bureau = list(BUREAUS)[i // len(DISTRICTS) % len(BUREAUS)]
        code, street = DISTRICTS[district]
        hall = {
            "name": f"{district}政务服务中心",
            "phone": f"0371-6{8100000 + i * 137:07d}",
            "province": "河南省",
            "city": "郑州市",
            "district": district,
            "address": street,
        }
        windows = tuple(f"综合受理{n}号窗口" for n in range(1, 3 + i % 4))
        suffix = "" if i < len(DISTRICTS) * len(BUREAUS) else f"（{i // 60 + 1}）"
        mode = "sender_pays" if i % 7 == 3 else "monthly"
        out.append(
            Department(f"郑州市{district}{bureau}{suffix}", district, code, BUREAUS[bureau], hall, windows, mode)
        )
    return out


@lru_cache(maxsize=1)
def signer_texts() -> list[tuple[str, bool, str]]:
    with (SIM / "signer_texts.csv").open(encoding="utf-8", newline="") as f:
        return [(r["class"], r["code_checked"] == "yes", r["text"]) for r in csv.DictReader(f)]


@lru_cache(maxsize=1)
def reasons() -> dict[str, dict[str, str]]:
    with (SIM / "reason_texts.csv").open(encoding="utf-8", newline="") as f:
        return {r["code"]: r for r in csv.DictReader(f)}


@lru_cache(maxsize=4096)
def deadline(day: date) -> date:
    return count_due_by(day, 10).due_by


def beijing(moment: datetime) -> datetime:
    return (moment + BEIJING_OFFSET).replace(tzinfo=None)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Event:
    status: str
    at: datetime
    source: str
    code: str | None = None
    text: str | None = None
    location: str | None = None
    reason_code: str | None = None
    reason: str | None = None


@dataclass
class Seeded:
    """One shipment's rows, as dicts keyed by column (the writers order them)."""

    shipment: dict[str, Any]
    cases: list[dict[str, Any]]
    events: list[dict[str, Any]]
    complaints: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    """Shipments one by one; deterministic for a seed. ``start`` .. ``now`` is the period they are created in."""

    def __init__(
        self,
        *,
        seed: int | str,
        now: datetime,
        months: int,
        department_count: int,
        clients: list[str],
        clerks: dict[str, str],
        purge_after: timedelta = timedelta(days=180),
    ) -> None:
        self.rng = random.Random(seed)
        self.now = now.astimezone(UTC)
        self.start = self.now - timedelta(days=round(months * 30.44))
        self.departments = departments(department_count)
        self.clients = clients
        self.clerks = clerks  # department → a clerk's staff id (answers, follow-ups)
        self.purge_after = purge_after
        self.serial = 0
        self.span = (self.now - self.start).total_seconds()

    # --- people -------------------------------------------------------------------------------------------
    def name(self) -> str:
        r = self.rng
        surname = r.choice(DOUBLE_SURNAMES) if r.random() < 0.02 else r.choice(SURNAMES)
        return surname + "".join(r.choice(GIVEN) for _ in range(1 if r.random() < 0.3 else 2))

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def applicant(self, dept: Department) -> dict[str, str]:
        r = self.rng
        if r.random() < 0.8:
            province, city, district = (
                "河南省",
                "郑州市",
                dept.district if r.random() < 0.6 else r.choice(list(DISTRICTS)),
            )
        else:
            province, city, district = r.choice(OTHER_CITIES)
        address = (
            f"{r.choice(STREETS)}{r.randrange(1, 300)}号{r.choice(ESTATES)}{r.randrange(1, 30)}号楼"
            f"{r.randrange(1, 6)}单元{r.randrange(1, 33)}0{r.randrange(1, 5)}室"
        )
        return {
            "name": self.name(),
            "phone": self.mobile(),
            "province": province,
            "city": city,
            "district": district,
            "address": address,
        }

    # --- ids ----------------------------------------------------------------------------------------------
    def ulid(self, moment: datetime) -> str:
        value = int(moment.timestamp() * 1000) << 80 | self.rng.getrandbits(80)
        return "".join(CROCKFORD[value >> shift & 31] for shift in range(125, -5, -5))

    def tracking(self) -> str:
        return "".join(self.rng.choices(TRACKING, k=13))

    def created_at(self) -> datetime:
        """Office hours on working days, Beijing time, spread evenly over the period."""
        r = self.rng
        for _ in range(20):
            moment = self.start + timedelta(seconds=r.random() * self.span)
            local = beijing(moment)
            hour = local.hour + local.minute / 60
            if 8.5 <= hour < 17.5 and (local.weekday() < 5 or r.random() < 0.05):
                return moment
        return moment

    def daytime(self, moment: datetime) -> datetime:
        """Couriers collect and deliver in the day: a moment at night moves to the next morning (Beijing)."""
        local = beijing(moment)
        if 8 <= local.hour < 19:
            return moment
        morning = datetime.combine(local.date() + timedelta(days=local.hour >= 19), time(8), tzinfo=UTC)
        return morning - BEIJING_OFFSET + timedelta(minutes=self.rng.uniform(0, 150))

    # --- one shipment -------------------------------------------------------------------------------------
    def shipment(self) -> Seeded:
        r, now = self.rng, self.now
        self.serial += 1
        index = r.randrange(len(self.departments))
        dept = self.departments[index]
        created = self.created_at()
        kind = "intake" if r.random() < 0.25 else "delivery"
        person = self.applicant(dept)
        sender, recipient = (person, dict(dept.hall)) if kind == "intake" else (dict(dept.hall), person)
        sid = "shp_" + self.ulid(created)
        waybill = f"11{self.serial * 7919 % 10**11:011d}"
        linked = kind == "delivery" and r.random() < 0.25
        due = deadline(beijing(created).date()) if kind == "delivery" and r.random() < 0.9 else None
        events = self.plan(kind, created, linked, dept, person, waybill)
        happened = [e for e in events if e.at <= now]
        status = happened[-1].status
        finished = happened[-1].at if status in ("delivered", "returned", "cancelled", "failed", "declined") else None
        cases = [
            {
                "shipment_id": sid,
                "position": p,
                "case_no": f"{dept.code}-{beijing(created).year}-{r.randrange(100000):05d}",
                "item_name": r.choice(dept.items),
            }
            for p in range(1 if r.random() < 0.85 else 2)
        ]
        ordered_at = next((e.at for e in happened if e.status == "ordered"), None)
        printed = ordered_at + timedelta(seconds=r.randrange(60, 1800)) if ordered_at and r.random() < 0.97 else None
        if printed and printed > now:
            printed = None
        failures = [e for e in happened if e.reason_code]
        last_failure = None
        if failures:
            f = failures[-1]
            stage = "pickup" if f.status == "failed" else "delivery"
            last_failure = {"reason_code": f.reason_code, "reason": f.reason, "occurred_at": iso(f.at), "stage": stage}
        event_rows = []
        for seq, e in enumerate(happened, 1):
            event_rows.append(
                {
                    "shipment_id": sid,
                    "sequence": seq,
                    "status": e.status,
                    "occurred_at": e.at,
                    "recorded_at": e.at + timedelta(seconds=r.randrange(1, 90)),
                    "source": e.source,
                    "carrier_code": e.code,
                    "carrier_text": e.text,
                    "location": e.location,
                    "dedup_key": f"{waybill}|{e.code}|{(e.at + BEIJING_OFFSET).replace(tzinfo=None).isoformat()}+08:00"
                    if e.code
                    else None,
                    "refused": False,
                    "reason_code": e.reason_code,
                    "reason": e.reason,
                    "staff_id": None,
                }
            )
        row: dict[str, Any] = {
            "id": sid,
            "client_id": self.clients[index % len(self.clients)],
            "kind": kind,
            "status": status,
            "department": dept.name,
            "window": r.choice(dept.windows),
            "sender": sender,
            "recipient": recipient,
            "contents": [{"name": "政务文件", "count": len(cases)}],
            "extra": {"source_system": "一体化政务服务平台"},
            "pickup_start": None,
            "pickup_end": None,
            "verification_code": f"{r.randrange(10**6):06d}" if kind == "delivery" and r.random() < 0.3 else None,
            "tracking_code": self.tracking(),
            "carrier": "ems",
            "waybill_no": waybill if ordered_at else None,
            "route_code": None,
            "destination_code": None,
            "destination_name": None,
            "package_code": None,
            "package_name": None,
            "failure_reason": failures[-1].reason if status == "failed" and failures else None,
            "last_sequence": len(happened),
            "request_id": None,
            "created_at": created,
            "updated_at": max(happened[-1].at, printed or created),
            "finished_at": finished,
            "purged_at": None,
            "label_printed_at": printed,
            "handed_at": next((e.at for e in happened if e.status == "picked_up"), None),
            "delivered_at": next((e.at for e in happened if e.status == "delivered"), None),
            "applicant_token_hash": None,
            "applicant_expires_at": None,
            "applicant_used_at": None,
            "applicant_expiry_notified_at": None,
            "proof": None,
            "attempts": sum(1 for e in happened if e.status == "delivery_failed"),
            "last_failure": last_failure,
            "resend_of": None,
            "resent_as": None,
            "resolution": None,
            "due_by": due,
            "overdue_at": None,
            "payment_mode": dept.payment_mode,
        }
        if kind == "intake":
            row["pickup_start"] = created + timedelta(hours=20)
            row["pickup_end"] = row["pickup_start"] + timedelta(hours=4)
        if linked:
            row["applicant_token_hash"] = hashlib.sha256(r.randbytes(32)).hexdigest()
            row["applicant_expires_at"] = created + timedelta(days=7)
            chosen = next((e.at for e in happened if e.source == "applicant"), None)
            row["applicant_used_at"] = chosen
        delivered_at = events_delivered = None
        if status == "delivered":
            delivered_at = happened[-1].at
            events_delivered = event_rows[-1]
            row["proof"] = proof.derive(row, cases, event_rows, events_delivered)
        if due is not None:
            missed = datetime.combine(due + timedelta(days=1), time(0, 5), tzinfo=UTC) - BEIJING_OFFSET
            if (
                missed <= now
                and (delivered_at is None or delivered_at > missed)
                and status not in ("cancelled", "declined")
            ):
                row["overdue_at"] = missed
        if status in ("returned", "failed") and finished and now - finished > RESOLVED_AFTER:
            row["resolution"] = {
                "action": r.choice(("window_pickup", "closed")),
                "note": "已电话联系申请人，改为窗口领取",
                "resolved_at": iso(finished + timedelta(days=r.randrange(1, 4))),
            }
        seeded = Seeded(row, cases, event_rows)
        self.extras(seeded, dept, delivered_at)
        if finished and now - finished > self.purge_after:
            self.purge(seeded, finished + self.purge_after + timedelta(hours=r.randrange(1, 24)))
        return seeded

    def plan(
        self, kind: str, created: datetime, linked: bool, dept: Department, person: dict[str, str], waybill: str
    ) -> list[Event]:
        """The whole history this shipment will have, from creation to its end (some of it may be in the future)."""
        r = self.rng
        t = created
        out: list[Event] = []
        if linked:
            out.append(Event("awaiting_applicant", t, "api"))
            t += timedelta(minutes=r.expovariate(1 / 600))
            if r.random() < 0.04:
                out.append(Event("declined", t, "applicant"))
                return out
            out.append(Event("pending", t, "applicant"))
        else:
            out.append(Event("pending", t, "api"))
        roll = r.random()
        if roll < 0.02:
            out.append(Event("cancelled", t + timedelta(minutes=r.randrange(2, 300)), "api"))
            return out
        t += timedelta(seconds=r.randrange(3, 60))
        out.append(Event("ordered", t, "system"))
        station = f"郑州市{dept.district}揽投部"
        src = "carrier_push" if r.random() < 0.9 else "carrier_poll"
        where = f"河南省 {station}"
        courier, courier_phone = self.name(), f"1390371{r.randrange(10000):04d}"
        if (roll < 0.035 and kind == "intake") or roll < 0.025:
            reason = reasons()[r.choice(("103", "113", "124", "130", "101"))]
            t += timedelta(hours=r.uniform(20, 50))
            out.append(
                Event(
                    "failed",
                    t,
                    src,
                    "207",
                    f"揽收未成功,订单已作废,原因:{reason['pickup_desc']}",
                    where,
                    reason["code"],
                    reason["pickup_desc"],
                )
            )
            return out
        stalled = r.random() < 0.01
        t += timedelta(hours=r.uniform(30, 90) if stalled else r.uniform(1, 26))
        t = self.daytime(t)
        out.append(
            Event("picked_up", t, src, "203", f"【{station}】已收寄,揽投员:{courier},电话:{courier_phone}", where)
        )
        t += timedelta(hours=r.uniform(2, 5))
        out.append(Event("in_transit", t, src, "954", "到达【郑州邮区中心局】", "河南省 郑州邮区中心局"))
        dest = f"{person['city']}{person['district']}揽投部" if kind == "delivery" else station
        slow = r.random() < 0.03
        t += timedelta(hours=r.uniform(150, 330) if slow else r.uniform(8, 40))
        out.append(Event("in_transit", t, src, "306", f"快件到达【{dest}】", f"{person['province']} {dest}"))
        where = f"{person['province']} {dest}"
        failures = 0 if r.random() < 0.92 else (1 if roll > 0.05 else 2)
        returned = roll >= 0.035 and roll < 0.055
        if returned:
            failures = 2
        for attempt in range(failures):
            t += timedelta(hours=r.uniform(0.5, 3))
            t = self.daytime(t)
            out.append(
                Event(
                    "out_for_delivery",
                    t,
                    src,
                    "702",
                    f"【{dest}】安排投递,投递员:{courier},电话:{courier_phone},正在派送中",
                    where,
                )
            )
            reason = reasons()[r.choice(("103", "113", "104", "118", "101") if returned else ("103", "113", "130"))]
            last = returned and attempt == failures - 1
            text = reason["attempt_text"].format(next="邮件将退回寄件人" if last else "将再次投递")
            t += timedelta(hours=r.uniform(0.5, 4))
            out.append(Event("delivery_failed", t, src, "705", text, where, reason["code"], reason["desc"]))
            t += timedelta(hours=r.uniform(16, 26))
        if returned:
            why = out[-1].reason
            for stop in (dest, "郑州邮区中心局"):
                t += timedelta(hours=r.uniform(4, 20))
                out.append(
                    Event(
                        "returning",
                        t,
                        src,
                        "708",
                        f"邮件退回中,原因:{why},已离开【{stop}】",
                        where,
                        out[-1].reason_code,
                        why,
                    )
                )
            t += timedelta(hours=r.uniform(10, 30))
            out.append(
                Event(
                    "returned",
                    t,
                    src,
                    "711",
                    "退回邮件已妥投,寄件人签收",
                    f"河南省 {station}",
                    out[-1].reason_code,
                    why,
                )
            )
            return out
        t += timedelta(hours=r.uniform(0.5, 3))
        t = self.daytime(t)
        out.append(
            Event(
                "out_for_delivery",
                t,
                src,
                "702",
                f"【{dest}】安排投递,投递员:{courier},电话:{courier_phone},正在派送中",
                where,
            )
        )
        _cls, _checked, text = (
            r.choice(signer_texts()) if kind == "delivery" else ("unit_mailroom", False, "投递并签收,签收人:单位收发室")
        )
        signer_name = person["name"] if kind == "delivery" else "收发室"
        text = text.format(
            courier=courier,
            courier_phone=courier_phone,
            receiver=signer_name,
            city=person["city"],
            county=person["district"],
            road=r.choice(STREETS),
            number=r.randrange(1, 200),
            village=f"{r.choice(STREETS)[:2]}村",
        )
        t += timedelta(hours=r.uniform(0.3, 5))
        out.append(Event("delivered", t, src, "704", text, where))
        return out

    def extras(self, seeded: Seeded, dept: Department, delivered_at: datetime | None) -> None:
        """Complaints (about 1 in 100; most answered within days) and, after delivery, a rating for about a third
        (a bad one opens a follow-up, due in five working days; nine in ten closed in time, almost all within a
        month)."""
        r, now, row = self.rng, self.now, seeded.shipment
        clerk = self.clerks.get(dept.name)
        if r.random() < 0.012:
            at = row["created_at"] + timedelta(days=r.uniform(1, 8))
            if at <= now:
                category = r.choice(list(COMPLAINT_TEXTS))
                answered = at + timedelta(days=r.uniform(0.2, 7))
                # Halls catch up: an old complaint is almost always answered.
                done = answered <= now and r.random() < (0.97 if now - at > timedelta(days=30) else 0.7)
                seeded.complaints.append(
                    {
                        "id": "cmp_" + self.ulid(at),
                        "shipment_id": row["id"],
                        "department": row["department"],
                        "client_id": row["client_id"],
                        "category": category,
                        "text": COMPLAINT_TEXTS[category],
                        "created_at": at,
                        "answer": r.choice(ANSWERS) if done else None,
                        "answered_at": answered if done else None,
                        "answered_by": clerk if done else None,
                    }
                )
        if delivered_at is None or r.random() > 0.35:
            return
        at = delivered_at + timedelta(hours=r.expovariate(1 / 20))
        if at > now:
            return
        level = r.choices([lv for lv, _ in LEVEL_WEIGHTS], [w for _, w in LEVEL_WEIGHTS])[0]
        rating = {
            "id": "rat_" + self.ulid(at),
            "shipment_id": row["id"],
            "client_id": row["client_id"],
            "level": level,
            "comment": r.choice(RATING_COMMENTS) if r.random() < 0.2 else None,
            "created_at": at,
        }
        seeded.ratings.append(rating)
        if level <= 2:
            due = deadline_after(beijing(at).date(), 5)
            closed = at + timedelta(days=r.uniform(0.5, 9))
            # Every bad rating is followed up (国办发〔2019〕51号); like complaints, a late one is caught up with.
            done = closed <= now and r.random() < (0.97 if now - at > timedelta(days=30) else 0.9)
            seeded.follow_ups.append(
                {
                    "id": "fu_" + self.ulid(at),
                    "rating_id": rating["id"],
                    "shipment_id": row["id"],
                    "department": row["department"],
                    "client_id": row["client_id"],
                    "opened_at": at,
                    "due_by": due,
                    "closed_at": closed if done else None,
                    "action": r.choice(FOLLOW_UP_ACTIONS) if done else None,
                    "closed_by": clerk if done else None,
                }
            )

    def purge(self, seeded: Seeded, at: datetime) -> None:
        """What logistics/jobs/purge.py leaves of a shipment that ended long ago."""
        row = seeded.shipment
        applicant = row["sender"] if row["kind"] == "intake" else row["recipient"]
        hall = row["recipient"] if row["kind"] == "intake" else row["sender"]
        names = (applicant["name"],)
        masked = {
            **applicant,
            "name": mask_name(applicant["name"]),
            "phone": mask_phone(applicant["phone"]),
            "address": mask_address(applicant["address"]),
            "purged": True,
        }
        hall = _masked_hall(tuple(hall.items()))
        row["sender"], row["recipient"] = (masked, hall) if row["kind"] == "intake" else (hall, masked)
        row["extra"], row["verification_code"], row["purged_at"] = {}, None, at
        if row["proof"] is not None:
            row["proof"] = proof.purged(row["proof"])
        if row["resolution"]:
            row["resolution"] = {**row["resolution"], "note": PURGED_TEXT}
        for c in seeded.complaints:
            c["text"] = PURGED_TEXT
            c["answer"] = PURGED_TEXT if c["answer"] else None
        for e in seeded.events:
            text = e["carrier_text"]
            if text and e["carrier_code"] in ("203", "702", "704"):  # the texts naming people or phones
                e["carrier_text"] = mask_text(text, names=names)


@lru_cache(maxsize=256)
def _masked_hall(items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    party = dict(items)
    return {
        **party,
        "name": mask_name(party["name"]),
        "phone": mask_phone(party["phone"]),
        "address": mask_address(party["address"]),
        "purged": True,
    }


def deadline_after(day: date, working_days: int) -> date:
    return count_due_by(day, working_days).due_by
