"""Shopping behaviour features: discount and price sensitivity, basket size, preferred hour and weekday.

Definitions (all over events with ``ts <= as_of``):

- ``discount_conversion_share``: conversions on actions with a discount / all conversions (0 without any).
- ``discount_response_rate`` / ``full_price_response_rate``: conversions / touches for discounted and for
  full-price actions; their gap is how much a discount moves the person.
- ``avg_discount_converted``: mean discount depth of the actions the person converted on.
- ``price_index``: mean over the person's order lines of amount / the mean amount of that category over
  all persons' orders up to ``as_of`` (1 = pays the category average, > 1 buys the dearer items).
- ``avg_item_price``, ``max_order_value``, ``basket_items_avg`` (lines per distinct order),
  ``basket_value_90d`` (spend per distinct order in the last 90 days).
- ``preferred_hour`` (0–23 UTC) and ``preferred_weekday`` (0 = Monday) of the person's own activity (visits,
  orders, opens, clicks, conversions), -1 without any; ``weekend_share`` and ``evening_share`` (18–23 h).
"""

from __future__ import annotations

import numpy as np

from features.engineering_base import DAY_NS, CodedEvents, count, is_type, matrix
from features.schema import CATEGORIES

__all__ = ["BEHAVIOUR_FEATURES", "behaviour_features", "category_mean_prices"]

BEHAVIOUR_FEATURES: dict[str, str] = {
    "discount_conversion_share": "float", "discount_response_rate": "float",
    "full_price_response_rate": "float", "avg_discount_converted": "float", "price_index": "float",
    "avg_item_price": "float", "max_order_value": "float", "basket_items_avg": "float",
    "basket_value_90d": "float", "preferred_hour": "int", "preferred_weekday": "int",
    "weekend_share": "float", "evening_share": "float",
}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def category_mean_prices(ev: CodedEvents, upto: np.ndarray) -> np.ndarray:
    """Mean order-line amount per category (CATEGORIES order; 0 where none) over ``upto`` orders."""
    cat_orders = upto & ev.is_order & (ev.category >= 0)
    cat_count = np.bincount(ev.category[cat_orders], minlength=len(CATEGORIES))
    return np.divide(np.bincount(ev.category[cat_orders], weights=ev.amount[cat_orders], minlength=len(CATEGORIES)),
                     cat_count, out=np.zeros(len(CATEGORIES)), where=cat_count > 0)


def behaviour_features(ev: CodedEvents, as_of: int, upto: np.ndarray, category_prices: np.ndarray | None = None
                       ) -> dict[str, np.ndarray]:
    """Columns of :data:`BEHAVIOUR_FEATURES` for every person in ``ev`` (arrays of length n_persons).

    ``category_prices`` (CATEGORIES order) replaces the category means of ``ev`` when ``ev`` holds only
    some persons (a real-time update) and the population's means are known.
    """
    n = ev.n_persons
    conv = upto & is_type(ev, "conversion")
    touch = upto & is_type(ev, "touch")
    disc = ev.discount > 0
    conversions, disc_conv = count(ev.code[conv], n), count(ev.code[conv & disc], n)
    touches_disc = count(ev.code[touch & disc], n)
    touches_full = count(ev.code[touch & ~disc & ev.has_action], n)
    full_conv = count(ev.code[conv & ~disc & ev.has_action], n)

    orders = upto & ev.is_order
    lines = count(ev.code[orders], n)
    spend = count(ev.code[orders], n, ev.amount[orders])
    cat_orders = orders & (ev.category >= 0)
    cat_mean = category_mean_prices(ev, upto) if category_prices is None else np.asarray(category_prices, float)
    relative = np.zeros(len(ev.code))
    ok = cat_orders.copy()
    ok[ok] = cat_mean[ev.category[ok]] > 0
    relative[ok] = ev.amount[ok] / cat_mean[ev.category[ok]]
    max_value = np.zeros(n)
    np.maximum.at(max_value, ev.code[orders], ev.amount[orders])
    distinct = count(ev.code[orders & ev.first_line_of_order], n)
    in90 = orders & (ev.ts > as_of - 90 * DAY_NS)
    distinct90 = count(ev.code[in90 & ev.first_line_of_order], n)

    active = upto & (ev.is_visit | is_type(ev, "open", "click", "conversion"))
    hours = matrix(ev, active, ev.hour, 24)
    days = matrix(ev, active, ev.weekday, 7)
    n_active = hours.sum(axis=1)
    return {
        "discount_conversion_share": _ratio(disc_conv, conversions),
        "discount_response_rate": np.minimum(_ratio(disc_conv, touches_disc), 1.0),
        "full_price_response_rate": np.minimum(_ratio(full_conv, touches_full), 1.0),
        "avg_discount_converted": _ratio(count(ev.code[conv], n, ev.discount[conv]), conversions),
        "price_index": _ratio(count(ev.code[ok], n, relative[ok]), count(ev.code[ok], n)),
        "avg_item_price": _ratio(spend, lines),
        "max_order_value": max_value,
        "basket_items_avg": _ratio(lines, distinct),
        "basket_value_90d": _ratio(count(ev.code[in90], n, ev.amount[in90]), distinct90),
        "preferred_hour": np.where(n_active > 0, hours.argmax(axis=1), -1).astype(np.int64),
        "preferred_weekday": np.where(n_active > 0, days.argmax(axis=1), -1).astype(np.int64),
        "weekend_share": _ratio(days[:, 5:].sum(axis=1), n_active),
        "evening_share": _ratio(hours[:, 18:].sum(axis=1), n_active),
    }
