"""Vocabularies and the action catalog as the simulated world knows them.

Duplicated from ``features/schema.py`` and ``config/actions.yaml`` on purpose: the simulator stands in for
the outside world and must not import the product (DESIGN.md: simulator imports numpy/pandas only).
A test in ``tests/simulator`` keeps the copies in sync.
"""

from __future__ import annotations

CHANNELS: tuple[str, ...] = (
    "web", "app", "mini_program", "wechat_oa", "sms", "email", "paid_ads", "pos", "guide",
)
# Outbound channels: contacting a person there needs their consent for that channel.
CONSENT_CHANNELS: tuple[str, ...] = ("app", "wechat_oa", "sms", "email", "paid_ads", "guide")
# Channels where a person browses (sessions) and where they can place an order.
BROWSE_CHANNELS: tuple[str, ...] = ("web", "app", "mini_program", "wechat_oa", "paid_ads", "guide")
ORDER_CHANNELS: tuple[str, ...] = ("web", "app", "mini_program", "pos", "guide")

ID_TYPES: tuple[str, ...] = (
    "phone", "email", "member_id", "device_id", "cookie_id", "wechat_openid", "wechat_unionid", "pos_card",
)
EVENT_TYPES: tuple[str, ...] = (
    "page_view", "product_view", "add_to_cart", "login", "bind", "order",
    "touch", "open", "click", "conversion", "consent",
)
RAW_COLUMNS: tuple[str, ...] = ("event_id", "ts", "channel", "event_type", "identifiers", "properties")

CATEGORIES: tuple[str, ...] = (
    "apparel", "shoes", "beauty", "home", "electronics", "sports", "kids", "food", "books", "jewelry",
)

# action id -> channels, promoted category, discount depth, base response logit (the world's truth).
ACTIONS: dict[str, dict] = {
    "welcome_coupon": {"channels": ("sms", "email", "wechat_oa", "app"), "category": None,
                       "discount": 0.15, "base_logit": -3.6},
    "discount_10": {"channels": ("sms", "email", "wechat_oa", "app", "web", "mini_program"),
                    "category": None, "discount": 0.10, "base_logit": -3.4},
    "new_arrivals": {"channels": ("email", "app", "web", "mini_program", "wechat_oa"), "category": "apparel",
                     "discount": 0.0, "base_logit": -3.3},
    "beauty_bundle": {"channels": ("email", "app", "mini_program", "wechat_oa"), "category": "beauty",
                      "discount": 0.05, "base_logit": -3.3},
    "loyalty_double_points": {"channels": ("app", "mini_program", "pos", "wechat_oa"), "category": None,
                              "discount": 0.0, "base_logit": -3.2},
    "winback_call": {"channels": ("guide",), "category": None, "discount": 0.20, "base_logit": -3.6},
    "product_reco": {"channels": ("web", "app", "mini_program", "email"), "category": None,
                     "discount": 0.0, "base_logit": -3.3},
    "vip_event": {"channels": ("guide", "wechat_oa", "sms"), "category": None, "discount": 0.0,
                  "base_logit": -3.3},
    "retarget_ad": {"channels": ("paid_ads",), "category": None, "discount": 0.0, "base_logit": -3.3},
    "service_survey": {"channels": ("email", "sms"), "category": None, "discount": 0.0, "base_logit": -3.8},
}
ACTION_IDS: tuple[str, ...] = tuple(ACTIONS)


def actions_on(channel: str) -> tuple[str, ...]:
    """Action ids deliverable on ``channel``, in catalog order (the logging policy picks uniformly)."""
    return tuple(a for a, spec in ACTIONS.items() if channel in spec["channels"])
