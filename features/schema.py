"""The one event contract every channel is mapped into, and the vocabularies it uses.

Every channel writes its own format under ``raw/<channel>/date=YYYY-MM-DD/`` (see features/adapters.py);
the adapters map them to the raw columns ``event_id, ts, channel, event_type, identifiers, properties``
(``identifiers`` and ``properties`` are JSON objects serialised as strings), and ingestion validates them
against these vocabularies into the date-partitioned lake ``lake/events/date=YYYY-MM-DD/``.
"""

from __future__ import annotations

CHANNELS: tuple[str, ...] = (
    "web", "app", "mini_program", "wechat_oa", "sms", "email", "paid_ads", "pos", "guide",
)
# Channels where the brand reaches out; contacting a person there needs their consent for the channel.
CONSENT_CHANNELS: tuple[str, ...] = ("app", "wechat_oa", "sms", "email", "paid_ads", "guide")

ID_TYPES: tuple[str, ...] = (
    "phone", "email", "member_id", "device_id", "cookie_id", "wechat_openid", "wechat_unionid", "pos_card",
)
# Identifiers that are personal data: normalised and keyed with a salted HMAC at ingestion.
PII_ID_TYPES: tuple[str, ...] = ("phone", "email")

EVENT_TYPES: tuple[str, ...] = (
    "page_view",     # properties: {}                       (web, app, mini_program)
    "product_view",  # properties: {item_id, category}
    "add_to_cart",   # properties: {item_id, category}
    "login",         # binds the channel's device/cookie/openid to member_id (identifiers hold both)
    "bind",          # WeChat/phone binding: openid + unionid + phone, or member_id + phone
    "order",         # properties: {order_id, item_id, category, amount}; pos orders carry phone/pos_card
    "touch",         # brand contact: properties {touch_id, action_id}
    "open",          # properties {touch_id, action_id}
    "click",         # properties {touch_id, action_id}
    "conversion",    # properties {touch_id, action_id, amount}
    "consent",       # properties {consent_channel, purpose, granted: bool}
)

RAW_COLUMNS: tuple[str, ...] = ("event_id", "ts", "channel", "event_type", "identifiers", "properties")

# Lake columns after ingestion: properties flattened, PII identifiers replaced by their keys.
LAKE_COLUMNS: tuple[str, ...] = (
    "event_id", "ts", "channel", "event_type", "identifiers",
    "item_id", "category", "amount", "order_id", "touch_id", "action_id",
    "consent_channel", "purpose", "granted",
)

# Product categories (properties.category); feature engineering builds one affinity per category.
CATEGORIES: tuple[str, ...] = (
    "apparel", "shoes", "beauty", "home", "electronics", "sports", "kids", "food", "books", "jewelry",
)
