"""The demo county (`mutualaid demo`): units, members, enrolments and claims from a seed."""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from claims.auth import Actor, create_user
from claims.db import session_scope
from claims.demo_history import Ledger, Path, carry_on, write_history
from claims.idcard import make_id_number
from claims.models import Claim, Enrolment, Member, Unit, User
from claims.rules import ClaimFacts, enrolment_problems, needed_documents
from claims.runtime import Runtime
from config.catalogue import Catalogue, Product
from workflows.intake import log_claim
from workflows.lifecycle import STATES
from workflows.transitions import fire

PASSWORD = "mutualaid-demo"
UNIT_COUNT, MEMBER_COUNT = 65, 1937
AREA_CODES = ("330127", "330122", "330182", "330183", "330185", "330424", "330521", "330726")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶")
GIVEN = {"M": "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国志文海东",
         "F": "芳娜敏静丽艳娟霞秀英华慧巧美娅婷雪琳玲红梅莉兰凤洁琴云萍颖倩丹燕晶佳悦欣怡"}
# Towns and the area (片区) each lies in.
TOWNS = {"城关镇": "城区", "东山镇": "东片", "青石镇": "东片", "西河镇": "西片", "白马镇": "西片",
         "南湖镇": "南片", "石桥镇": "南片", "北岭镇": "北片", "龙泉乡": "北片", "桃源乡": "南片"}
AREAS = ("城区", "东片", "西片", "南片", "北片")
AGENCIES = ("县人民政府办公室 县教育局 县卫生健康局 县财政局 县人力资源和社会保障局 县公安局 "
            "县市场监督管理局 县交通运输局 县住房和城乡建设局 县农业农村局 县自然资源和规划局 "
            "县水利局 县人民法院 县人民检察院 县应急管理局 县文化和广电旅游体育局 县统计局 "
            "县民政局").split()
COUNTY_SCHOOLS = ("县第一中学 县第二中学 县实验中学 县实验小学 县城关第二小学 县职业技术学校 "
                  "县实验幼儿园 县特殊教育学校").split()
COUNTY_HOSPITALS = "县人民医院 县中医院 县妇幼保健院 县疾病预防控制中心".split()
COUNTY_FIRMS = ("县自来水公司 县公共交通有限公司 县燃气有限公司 县农村商业银行 县邮政分公司 "
                "县供销合作社联合社 国网县供电公司 县城市建设投资集团有限公司").split()
BRANDS = "恒达 宏远 金鹰 华兴 鑫源 永丰 瑞丰 天成 东方 新世纪 博远 正泰 力拓 绿源 嘉禾 明珠 长兴"
TRADES = "纺织 机械制造 食品 建材 电子科技 印务 竹木制品 服饰 物流".split()
# (category, how many units, relative size, share of women); county-level schools and
# hospitals (names starting with 县) are three times larger than the towns' ones.
CATEGORIES = (("agency", 13, 1.0, 0.45), ("town", 8, 1.2, 0.40), ("school", 15, 1.3, 0.62),
              ("hospital", 7, 1.4, 0.70), ("firm", 22, 1.2, 0.42))
HOSPITALS = "县人民医院 县中医院 市第一人民医院 市中心医院 省人民医院 城关镇卫生院".split()
ILLNESSES = ("社区获得性肺炎 急性阑尾炎 胆囊结石伴胆囊炎 2型糖尿病 高血压病3级 腰椎间盘突出症 "
             "冠状动脉粥样硬化性心脏病 慢性阻塞性肺疾病急性加重 子宫肌瘤 甲状腺结节 脑梗死 "
             "急性胰腺炎 肾结石").split()
INJURIES = ("右桡骨远端骨折 左踝关节扭伤 交通事故致多处软组织挫伤 工作中摔伤致腰椎压缩性骨折 "
            "机械致左手食指离断伤 烫伤（II度） 右锁骨骨折").split()
CRITICAL = "肺恶性肿瘤 急性心肌梗死 脑卒中后遗症 结肠恶性肿瘤 终末期肾病 肝恶性肿瘤".split()
FEMALE = "乳腺恶性肿瘤 宫颈恶性肿瘤 卵巢恶性肿瘤 子宫内膜恶性肿瘤".split()
DOCUMENT_REASONS = {  # why a clerk turns a document back
    "claim_form": "申请表缺单位工会盖章", "id_card": "身份证复印件不清晰",
    "invoice": "发票为复印件，请提供原件", "settlement_sheet": "医保结算单缺少医院盖章",
    "discharge_summary": "出院小结缺页", "accident_proof": "事故证明未加盖单位公章",
    "disability_assessment": "伤残鉴定书非指定机构出具", "death_certificate": "死亡证明为复印件",
    "diagnosis_certificate": "诊断证明书缺医师签名", "pathology_report": "病理报告缺少医院盖章"}
WITHDRAW_REASONS = ("职工已通过其他渠道报销，单位工会申请撤回", "误报险种，单位工会撤回后重报",
                    "材料需重新整理，单位工会申请撤回")
# What the demo claims do after being logged, and how often.
SCENARIOS = dict(history=110, ready=12, logged=10, missing=10, pending=10, resubmitted=4,
                 withdrawn=8)
PRODUCT_MIX = {"inpatient": 60, "accident": 22, "critical_illness": 8, "female_special": 10}


def _person_name(rng: random.Random, sex: str) -> str:
    surname = rng.choices(SURNAMES, weights=[60 / (i + 6) for i in range(len(SURNAMES))])[0]
    given = "".join(rng.sample(GIVEN[sex], rng.choices((1, 2), (3, 7))[0]))
    return surname + given


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('35789')}{rng.randrange(10**9):09d}"


def _unit_names(rng: random.Random) -> dict[str, list[str]]:
    """Candidate names per category, shuffled: enough to take CATEGORIES' counts from."""
    towns = list(TOWNS)
    pools = {
        "agency": list(AGENCIES),
        "town": [f"{t}人民政府" for t in towns],
        "school": [*COUNTY_SCHOOLS, *(f"{t}中心小学" for t in towns),
                   *(f"{t}初级中学" for t in towns)],
        "hospital": [*COUNTY_HOSPITALS, *(f"{t}卫生院" for t in towns)],
        "firm": [*COUNTY_FIRMS, *(f"{b}{rng.choice(TRADES)}有限公司" for b in BRANDS.split())],
    }
    for category, names in pools.items():  # the county-level ones first: every county has them
        county = [n for n in names if n.startswith(("县", "国网")) and category != "agency"]
        rest = [n for n in names if n not in county]
        rng.shuffle(rest)
        pools[category] = county + rest
    return pools


def _area_of(rng: random.Random, name: str) -> str:
    in_town = [area for town, area in TOWNS.items() if name.startswith(town)]
    return (in_town or ["城区" if name.startswith(("县", "国网")) else rng.choice(AREAS)])[0]


def plan_units(rng: random.Random) -> list[tuple[Unit, int, float]]:
    """65 units with the number of members each enrols and the share of women in it."""
    pools = _unit_names(rng)
    drafts = [(name, size * rng.lognormvariate(0, 0.6)
               * (3 if category in ("school", "hospital") and name.startswith("县") else 1), women)
              for category, count, size, women in CATEGORIES for name in pools[category][:count]]
    rng.shuffle(drafts)
    drafts.sort(key=lambda draft: draft[0] != "县第一中学")  # U001, the demo unit_staff's unit
    assert len(drafts) == UNIT_COUNT
    scale = (MEMBER_COUNT - 5 * UNIT_COUNT) / sum(w for _, w, _ in drafts)
    sizes = [5 + round(w * scale) for _, w, _ in drafts]
    sizes[sizes.index(max(sizes))] += MEMBER_COUNT - sum(sizes)  # rounding: exactly 1,937
    planned: list[tuple[Unit, int, float]] = []
    for n, ((name, _, women), size) in enumerate(zip(drafts, sizes, strict=True), start=1):
        employees = max(size, round(size / rng.uniform(0.72, 0.9)))
        unit = Unit(code=f"U{n:03d}", name=name, area=_area_of(rng, name),
                    union_contact=_person_name(rng, rng.choice("MF")), union_phone=_phone(rng),
                    union_email=f"gh.u{n:03d}@example.org", employee_count=employees)
        planned.append((unit, size, women))
    return planned


def plan_members(rng: random.Random, units: list[tuple[Unit, int, float]],
                 today: date) -> list[Member]:
    """Every unit's enrolled workers, with unique valid ID numbers (units must have ids)."""
    members: list[Member] = []
    taken: set[str] = set()
    for unit, size, women in units:
        for _ in range(size):
            sex = "F" if rng.random() < women else "M"
            age = int(rng.triangular(21, 59, 38))
            born = date(today.year - age - 1, 1, 1) + timedelta(days=rng.randrange(365))
            id_number = ""
            while not id_number or id_number in taken:
                id_number = make_id_number(rng.choice(AREA_CODES), born, rng.randrange(100), sex)
            taken.add(id_number)
            members.append(Member(unit_id=unit.id, name=_person_name(rng, sex), id_number=id_number,
                                  birth_date=born, sex=sex, phone=_phone(rng)))
    return members


def plan_enrolments(rng: random.Random, catalogue: Catalogue, units: list[Unit],
                    members: list[Member], today: date) -> list[Enrolment]:
    """Inpatient for all, accident for most, the lump sums for some; terms cover today."""
    terms: dict[int | None, tuple[date, date]] = {}
    for unit in units:  # a unit enrols its staff together, from 1 January
        start = date(today.year - rng.choices((1, 0), (3, 1))[0], 1, 1)
        terms[unit.id] = (start, date(max(start.year + 1, today.year), 12, 31))
    enrolments: list[Enrolment] = []
    for member in members:
        start, end = terms[member.unit_id]
        chances = {"inpatient": 1.0, "accident": 0.85, "critical_illness": 0.3,
                   "female_special": 0.45 if member.sex == "F" else 0.0}
        for code, chance in chances.items():
            product = catalogue.get(code)
            if product is None or rng.random() >= chance:
                continue
            shares = rng.choices((1, 2, 3), (80, 15, 5))[0] if code == "inpatient" else 1
            if enrolment_problems(product, birth_date=member.birth_date, sex=member.sex,
                                  start_date=start, end_date=end, shares=shares):
                continue
            enrolments.append(Enrolment(member_id=member.id, product_code=code, shares=shares,
                                        start_date=start, end_date=end))
    return enrolments


def claim_fields(rng: random.Random, product: Product, member: Member, enrolment: Enrolment,
                 today: date, *, death: bool = False) -> dict[str, Any] | None:
    """Plausible claim fields as the API schema gives them; None when no date would fit."""
    cause = "accident" if product.code == "accident" or (
        product.code == "inpatient" and rng.random() < 0.2) else "illness"
    # Within the last four months, after the waiting period for illnesses, discharged by today.
    waiting = product.waiting_days if cause == "illness" else 0
    low = max(enrolment.start_date + timedelta(days=waiting), today - timedelta(days=120))
    high = min(today - timedelta(days=30 if product.kind == "inpatient" else 3),
               enrolment.end_date)
    if low > high:
        return None
    incident = low + timedelta(days=rng.randint(0, (high - low).days))
    fields: dict[str, Any] = {"id_number": member.id_number, "product_code": product.code,
                              "cause": cause, "incident_date": incident}
    if product.code == "inpatient":
        total = int(rng.triangular(3000, 60000, 9000) * 100)  # fen
        paid = int(total * rng.uniform(0.5, 0.7))
        fields |= {"admission_date": incident,
                   "discharge_date": incident + timedelta(days=rng.randint(3, 21)),
                   "hospital": rng.choice(HOSPITALS),
                   "diagnosis": rng.choice(INJURIES if cause == "accident" else ILLNESSES),
                   "total_expense": total, "insurance_paid": paid,
                   "self_paid": int((total - paid) * rng.uniform(0.6, 0.95))}
    elif product.code == "accident":
        total = 0 if death else int(rng.triangular(200, 8000, 1200) * 100)
        paid = int(total * rng.choice((0, 0, 0.3, 0.5)))
        fields |= {"hospital": rng.choice(HOSPITALS), "diagnosis": rng.choice(INJURIES),
                   "total_expense": total, "insurance_paid": paid,
                   "self_paid": int((total - paid) * rng.uniform(0.8, 1.0))}
        if death:
            spouse_sex = "F" if member.sex == "M" else "M"
            fields |= {"diagnosis": "交通事故致死亡", "death": True, "beneficiary": {
                "name": _person_name(rng, spouse_sex), "relation": "配偶",
                "id_number": make_id_number("330100", member.birth_date + timedelta(
                    days=rng.randint(-900, 900)), 99, spouse_sex)}}
        elif rng.random() < 0.25:
            fields["disability_grade"] = rng.choice((7, 8, 9, 9, 10, 10, 10))
            # 20-150 days after the accident, drawn from its date so the seed's sequence,
            # and with it the rest of the county, stays as it was.
            days = 20 + fields["incident_date"].toordinal() % 131
            fields["disability_assessed_on"] = min(fields["incident_date"] + timedelta(days=days),
                                                   today)
    else:
        diagnoses = FEMALE if product.code == "female_special" else CRITICAL
        fields |= {"hospital": rng.choice(HOSPITALS[2:5]), "diagnosis": rng.choice(diagnoses)}
    return fields


def complete_documents(product: Product, fields: dict[str, Any], today: date) -> list[str]:
    """Every document code the claim needs, as its product's rules list them."""
    values = {f.name: fields.get(f.name) for f in dataclasses.fields(ClaimFacts)}
    money = {name: values[name] or 0 for name in ("total_expense", "insurance_paid", "self_paid")}
    facts = ClaimFacts(**values | money | {"death": bool(values["death"]), "logged_on": today})
    return needed_documents(product, facts)


Covered = dict[str, list[tuple[Member, Enrolment]]]


@dataclasses.dataclass
class DemoClerk:
    """The demo clerk at the counter: logs claims and fires events through the workflow."""

    session: Session
    runtime: Runtime
    actor: Actor

    def log(self, fields: dict[str, Any], on: date | None = None) -> Claim:
        """Log a claim as POST /claims does, on the day given (default today)."""
        rt = self.runtime
        return log_claim(self.session, rt.catalogue, self.actor, fields, on or rt.today())[0]

    def fire(self, claim: Claim, event: str, **fields: Any) -> None:
        """Fire an event as POST /claims/{claim_no}/events does."""
        fire(self.session, self.runtime, claim, event, self.actor, fields)


def _claimant(rng: random.Random, covered: Covered, product: Product, day: date,
              used: set[tuple[int | None, str]], death: bool) -> dict[str, Any] | None:
    """Fields of a claim logged on `day` by an enrolled member whose dates fit; one claim a
    product each."""
    for _ in range(50):
        member, enrolment = rng.choice(covered[product.code])
        if (member.id, product.code) in used:
            continue
        fields = claim_fields(rng, product, member, enrolment, day, death=death)
        if fields is not None:
            used.add((member.id, product.code))
            return fields
    return None


# States the past year might miss by chance, each given a claim that stops there:
# (state, product, how many days ago it was logged).
STOPS = (("submitted", "inpatient", 95), ("approved", "inpatient", 100),
         ("funds_received", "inpatient", 105), ("notified", "accident", 110),
         ("onsite_scheduled", "critical_illness", 115))


def _plan_claims(rng: random.Random, today: date) -> list[tuple[date, str, str, str | None]]:
    """(logging day, scenario, product, state to stop in) for every demo claim, oldest first:
    the past year's claims on days spread over it, the ones still at the counter in the last
    three weeks, two in the batch sealed last Monday and one for each of STOPS."""
    planned: list[tuple[date, str, str, str | None]] = []
    for _ in range(rng.randint(150, 175)):
        scenario = rng.choices(list(SCENARIOS), list(SCENARIOS.values()))[0]
        product = rng.choices(list(PRODUCT_MIX), list(PRODUCT_MIX.values()))[0]
        back = rng.randint(2, 360) if scenario == "history" else rng.randint(0, 20)
        planned.append((today - timedelta(days=back), scenario, product, None))
    yesterday = today - timedelta(days=1)
    sealed = yesterday - timedelta(days=yesterday.weekday())  # the newest batch's Monday
    planned += [(sealed - timedelta(days=rng.randint(1, 7)), "history", "inpatient", None)
                for _ in range(2)]
    planned += [(today - timedelta(days=back), "history", product, state)
                for state, product, back in STOPS]
    return sorted(planned, key=lambda plan: plan[0])


def _stamp(rng: random.Random, runtime: Runtime, day: date) -> datetime:
    """A working-hours moment on `day` in the county, as UTC."""
    local = datetime.combine(day, clock(rng.randint(8, 16), rng.randrange(60)),
                             tzinfo=runtime.settings.tz)
    return min(local.astimezone(UTC), datetime.now(UTC))


def log_demo_claims(rng: random.Random, clerk: DemoClerk, members: list[Member],
                    enrolments: list[Enrolment]) -> None:
    """About 160 claims through the real workflow: a year of them carried on to the city
    office's decision and the payout, the rest in every state the claim door reaches."""
    runtime = clerk.runtime
    today, catalogue = runtime.today(), runtime.catalogue
    by_id = {member.id: member for member in members}
    covered: Covered = {}
    for enrolment in enrolments:
        covered.setdefault(enrolment.product_code, []).append((by_id[enrolment.member_id],
                                                               enrolment))
    used: set[tuple[int | None, str]] = set()
    ready: list[dict[str, Any]] = []
    history: list[Claim] = []
    logged: list[Claim] = []
    death_done = False
    stops: dict[int | None, str] = {}
    for day, scenario, code, stop in _plan_claims(rng, today):
        product = catalogue.get(code)
        if product is None or not covered.get(product.code):
            continue
        death = product.code == "accident" and scenario == "history" and not death_done
        fields = _claimant(rng, covered, product, day, used, death)
        if fields is None:
            continue
        death_done = death_done or death
        documents = complete_documents(product, fields, day)
        missing = rng.sample(documents, rng.randint(1, 2)) if scenario == "missing" else []
        fields["documents"] = [code for code in documents if code not in missing]
        claim = clerk.log(fields, on=day)
        logged.append(claim)
        if scenario == "missing" and len(missing) == 2 and rng.random() < 0.5:
            clerk.fire(claim, "attach_documents", documents=missing[:1])
        if scenario in ("ready", "history") or (
                scenario in ("pending", "withdrawn") and rng.random() < 0.4):
            clerk.fire(claim, "verify")
        if scenario in ("pending", "resubmitted"):
            rejected = rng.choice(fields["documents"])
            clerk.fire(claim, "request_materials", documents=[rejected],
                       reason=DOCUMENT_REASONS[rejected])
            if scenario == "resubmitted":
                clerk.fire(claim, "attach_documents", documents=[rejected])
                clerk.fire(claim, "verify")
        if scenario == "withdrawn":
            clerk.fire(claim, "withdraw", reason=rng.choice(WITHDRAW_REASONS))
        if scenario == "history":
            history.append(claim)
            if stop:
                stops[claim.id] = stop
        elif claim.state == "ready":
            ready.append(fields)
    # A union sometimes brings the same claim twice: logged, it can never be verified.
    for fields in rng.sample(ready, min(5, len(ready))):
        logged.append(clerk.log(dict(fields)))
    clerk.session.flush()
    stamps = {claim.id: _stamp(rng, runtime, claim.logged_on) for claim in logged}
    ledger = Ledger(runtime)
    yesterday = today - timedelta(days=1)
    paths = [carry_on(rng, claim, by_id[claim.member_id], ledger, yesterday, stops.get(claim.id))
             if claim in history else Path(claim, claim.state, claim.version or 1)
             for claim in logged]
    write_history(clerk.session, ledger, paths, lambda claim: stamps[claim.id])


def _count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(sa.func.count()).select_from(model)) or 0)


def _summary(session: Session, seed: int, logins: list[str]) -> list[str]:
    """What was loaded, claims by state, and the demo logins; the caller adds the time taken."""
    states = dict(session.execute(select(Claim.state, sa.func.count()).group_by(Claim.state)).all())
    lines = [f"Demo county loaded (seed {seed}): {_count(session, Unit)} units, "
             f"{_count(session, Member):,} members, {_count(session, Enrolment):,} enrolments, "
             f"{_count(session, Claim)} claims.", "Claims by state:"]
    lines += [f"  {state:<18} {states[state]:>4}  {label}"
              for state, label in STATES.items() if state in states]
    return [*lines, f"Demo logins (password: {PASSWORD}):", *logins]


def create_demo_users(session: Session, unit: Unit) -> list[str]:
    """admin, clerk and unit001 (staff of the first unit); a username taken already is kept."""
    logins: list[str] = []
    for username, role, unit_code, note in (
            ("admin", "admin", None, "admin"), ("clerk", "clerk", None, "clerk"),
            ("unit001", "unit_staff", unit.code, f"unit_staff of {unit.code} {unit.name}")):
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            note = "existed already: its password is unchanged"
        else:
            create_user(session, username=username, role=role, password=PASSWORD,
                        unit_code=unit_code)
        logins.append(f"  {username:<9} {note}")
    return logins


def load_demo(runtime: Runtime, *, seed: int = 2026) -> str:
    """Fill an empty database with a demo county and summarise it; a loaded one is left alone."""
    started = time.perf_counter()
    rng = random.Random(seed)
    today = runtime.today()
    with session_scope(runtime.engine) as session:
        units_there = _count(session, Unit)
        if units_there:
            return f"Demo data is already loaded ({units_there} units); nothing changed."
        planned = plan_units(rng)
        units = [unit for unit, _, _ in planned]
        session.add_all(units)
        session.flush()
        members = plan_members(rng, planned, today)
        session.add_all(members)
        session.flush()
        enrolments = plan_enrolments(rng, runtime.catalogue, units, members, today)
        session.add_all(enrolments)
        session.flush()
        logins = create_demo_users(session, units[0])
        # Claim numbering runs an ORM UPDATE that scans the identity map: keep it small.
        session.expunge_all()
        clerk = DemoClerk(session, runtime, Actor(username="clerk", role="clerk"))
        log_demo_claims(rng, clerk, members, enrolments)
        summary = _summary(session, seed, logins)
    seconds = time.perf_counter() - started
    return "\n".join([*summary, f"Loaded in {seconds:.1f} s."])
