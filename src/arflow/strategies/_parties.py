"""Customers as credit control sees them: contacts, company profiles and credit terms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from ..domain import CompanyProfile, Contact, CreditProfile, Customer
from ._values import _COMMON_TERMS, amounts, dates

_CITIES = ("上海", "北京", "深圳", "Suzhou", "Ningbo", "Chengdu", "Wuhan", "Hangzhou")
_TRADES = (
    "精密机械",
    "电子科技",
    "Logistics",
    "Trading",
    "新材料",
    "Pharma",
    "Foods",
    "Auto Parts",
)
_FORMS = ("有限公司", "股份有限公司", "Co., Ltd.", "Group", "Holdings")
_PEOPLE = ("王芳", "李伟", "张敏", "刘洋", "陈静", "Anna Schmidt", "John Miller", "Mei Lin")
_MAILBOXES = ("ap", "finance", "accounts", "cfo", "wang.fang", "li.wei")
_ZONES = ("Asia/Shanghai", "UTC", "Asia/Hong_Kong", "Europe/Berlin", "America/New_York")
_REGIONS = ("East", "North", "South", "West", "Overseas")
_SALES = ("li.wei", "zhang.min", "chen.jing", "liu.yang")
_TAGS = ("key-account", "vip", "export", "government", "no-dunning-charges")
_INDUSTRIES = ("manufacturing", "retail", "construction", "healthcare", "logistics", "energy")
_RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "C")


@st.composite
def _contact(draw: DrawFn, domain: str) -> Contact:
    name = draw(st.sampled_from(_PEOPLE))
    has_email = draw(st.booleans())
    has_phone = draw(st.booleans()) or not has_email
    return Contact(
        name=name,
        email=f"{draw(st.sampled_from(_MAILBOXES))}@{domain}" if has_email else None,
        phone=f"+86 1{draw(st.integers(30, 99))}{draw(st.integers(0, 99_999_999)):08d}"
        if has_phone
        else None,
        preferred_channel=draw(st.sampled_from(("email", "sms", "phone", "letter"))),
        locale=draw(st.sampled_from(("zh_CN", "en"))),
        timezone=draw(st.sampled_from(_ZONES)),
        role=draw(st.sampled_from((None, "accounts payable", "finance manager", "owner"))),
    )


def _company_profiles(currency: str) -> SearchStrategy[CompanyProfile]:
    return st.builds(
        CompanyProfile,
        enterprise_type=st.sampled_from(
            (None, "private", "state_owned", "listed", "foreign", "individual")
        ),
        registered_capital=st.none()
        | amounts(Decimal(100_000), Decimal(500_000_000), currency=currency),
        established_on=st.none() | dates(date(1980, 1, 1), date(2025, 12, 31)),
        industry=st.none() | st.sampled_from(_INDUSTRIES),
        industry_risk=st.none() | st.integers(1, 5),
        third_party_rating=st.none() | st.sampled_from(_RATINGS),
        bank_reference=st.sampled_from((None, "good", "fair", "poor")),
    )


@st.composite
def _customer(
    draw: DrawFn,
    ids: SearchStrategy[str],
    currency: str,
    grades: Sequence[str | None],
    dunning_block: bool | None,
    order_block: bool | None,
) -> Customer:
    cid = draw(ids)
    parts = [draw(st.sampled_from(options)) for options in (_CITIES, _TRADES, _FORMS)]
    # 上海精密机械有限公司, but Ningbo Logistics Co., Ltd.
    name = "".join(parts) if not any(p.isascii() for p in parts) else " ".join(parts)
    domain = f"{cid.lower().replace('_', '-')}.example.com"
    blocked = draw(st.booleans()) if dunning_block is None else dunning_block
    limit = draw(st.none() | amounts(Decimal(10_000), Decimal(5_000_000), currency=currency))
    credit = CreditProfile(
        grade=draw(st.sampled_from(tuple(grades))),
        credit_limit=limit,
        payment_terms_days=draw(st.sampled_from(_COMMON_TERMS)),
        prepayment_percent=draw(st.sampled_from((Decimal(0), Decimal(30), Decimal(100)))),
        order_block=draw(st.booleans()) if order_block is None else order_block,
        dunning_block=blocked,
        dunning_block_reason="legal hold" if blocked else None,
    )
    has_profile = draw(st.booleans())
    return Customer(
        id=cid,
        name=name,
        region=draw(st.none() | st.sampled_from(_REGIONS)),
        salesperson=draw(st.none() | st.sampled_from(_SALES)),
        sales_manager=draw(st.none() | st.sampled_from(_SALES)),
        contacts=tuple(draw(st.lists(_contact(domain), max_size=3))),
        credit=credit,
        profile=draw(_company_profiles(currency)) if has_profile else CompanyProfile(),
        tags=tuple(draw(st.lists(st.sampled_from(_TAGS), max_size=2, unique=True))),
    )


def customers(
    ids: SearchStrategy[str] | str | None = None,
    *,
    currency: str = "CNY",
    grades: Sequence[str | None] = ("A", "B", "C", "D", None),
    dunning_block: bool | None = False,
    order_block: bool | None = False,
) -> SearchStrategy[Customer]:
    """Customers as credit control sees them, to register (``CustomerRegistered``) before
    invoicing them: a credit profile (grade from ``grades``, a credit limit in ``currency``
    or none, payment terms, prepayment), no, one or several contacts (e-mail and/or phone,
    locale, time zone), and a company profile for credit scoring or none.

    ``ids`` is a strategy or a fixed id (default ``C0001``...``C9999``). ``dunning_block``
    and ``order_block`` are fixed (``False`` by default: a blocked customer is never
    dunned, which hides most of a ladder) or drawn when ``None``.
    """
    id_strategy: SearchStrategy[str]
    if ids is None:
        id_strategy = st.integers(1, 9999).map(lambda n: f"C{n:04d}")
    elif isinstance(ids, str):
        id_strategy = st.just(ids)
    else:
        id_strategy = ids
    if not grades:
        raise ValueError("customers: grades must not be empty")
    return _customer(id_strategy, currency, grades, dunning_block, order_block)
