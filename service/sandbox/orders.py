"""v2 orders as the Orders API documents them: every order field, v2 addresses, money as 4-decimal strings.

Orders are stored without their resource links; `order_view` adds them for the store that answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.sandbox.data import StoreData

Record = dict[str, Any]
ORDER_STATUSES = {
    0: "Incomplete",
    1: "Pending",
    2: "Shipped",
    3: "Partially Shipped",
    4: "Refunded",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    8: "Awaiting Pickup",
    9: "Awaiting Shipment",
    10: "Completed",
    11: "Awaiting Fulfillment",
    12: "Manual Verification Required",
    13: "Disputed",
    14: "Partially Refunded",
}


def rfc2822(moment: datetime) -> str:
    """v2 dates look like 'Tue, 05 Jan 2026 09:00:00 +0000'."""
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")


CURRENCY = {"currency_id": 1, "currency_code": "USD", "default_currency_id": 1}
SHIPPING_COST = 7.5
# payment_status by order status (the documented enum)
PAYMENT_STATUS = {0: "pending", 1: "pending", 4: "refunded", 5: "void", 6: "declined", 7: "pending"}


def money(value: float) -> str:
    """v2 money: a string with four decimals."""
    return f"{value:.4f}"


def v2_address(source: Record, email: str) -> Record:
    """A v2 billing address (street_1, state, zip, country_iso2) from a v3 customer address."""
    return {
        "first_name": source.get("first_name", ""),
        "last_name": source.get("last_name", ""),
        "company": source.get("company", ""),
        "street_1": source.get("address1", source.get("street_1", "")),
        "street_2": source.get("address2", source.get("street_2", "")),
        "city": source.get("city", ""),
        "state": source.get("state_or_province", source.get("state", "")),
        "zip": source.get("postal_code", source.get("zip", "")),
        "country": source.get("country", "United States"),
        "country_iso2": source.get("country_code", source.get("country_iso2", "US")),
        "phone": source.get("phone", ""),
        "email": email,
        "form_fields": [],
    }


def new_order(
    store: StoreData,
    order_id: int,
    lines: list[Record],
    billing: Record,
    created: datetime,
    **fields: Any,
) -> Record:
    """A complete v2 order for `lines` (v2 order products); `fields` override defaults such as status_id."""
    subtotal = sum(float(line["total_inc_tax"]) for line in lines)
    shipping = SHIPPING_COST if lines else 0.0
    status_id = fields.pop("status_id", 11)
    items = sum(int(line["quantity"]) for line in lines)
    zero = money(0)
    order: Record = {
        "id": order_id,
        "customer_id": 0,
        "date_created": rfc2822(created),
        "date_modified": rfc2822(created),
        "date_shipped": "",
        "status_id": status_id,
        "status": ORDER_STATUSES[status_id],
        "cart_id": "",
        **{f"subtotal_{k}": money(subtotal) for k in ("ex_tax", "inc_tax")},
        "subtotal_tax": zero,
        "base_shipping_cost": money(shipping),
        **{f"shipping_cost_{k}": money(shipping) for k in ("ex_tax", "inc_tax")},
        "shipping_cost_tax": zero,
        "shipping_cost_tax_class_id": 0,
        **{f"{kind}_cost_{k}": zero for kind in ("handling", "wrapping") for k in ("ex_tax", "inc_tax")},
        **{f"{kind}_cost_tax": zero for kind in ("handling", "wrapping")},
        **{f"base_{kind}_cost": zero for kind in ("handling", "wrapping")},
        "handling_cost_tax_class_id": 0,
        "wrapping_cost_tax_class_id": 0,
        **{f"total_{k}": money(subtotal + shipping) for k in ("ex_tax", "inc_tax")},
        "total_tax": zero,
        "items_total": items,
        "items_shipped": items if status_id in (2, 10) else 0,
        "payment_method": "Credit Card",
        "payment_provider_id": "",
        "payment_status": PAYMENT_STATUS.get(status_id, "captured"),
        "refunded_amount": money(0),
        "order_is_digital": False,
        "store_credit_amount": zero,
        "gift_certificate_amount": zero,
        "ip_address": "127.0.0.1",
        "ip_address_v6": "",
        "geoip_country": "United States",
        "geoip_country_iso2": "US",
        **CURRENCY,
        "default_currency_code": "USD",
        "currency_exchange_rate": "1.0000000000",
        "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "staff_notes": "",
        "customer_message": "",
        "discount_amount": zero,
        "coupon_discount": zero,
        "shipping_address_count": 1,
        "is_deleted": False,
        "ebay_order_id": "0",
        "billing_address": billing,
        "is_email_opt_in": False,
        "credit_card_type": None,
        "order_source": "www",
        "channel_id": 1,
        "external_source": None,
        "external_id": None,
        "external_merchant_id": None,
        "external_order_id": "",
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en",
        "is_tax_inclusive_pricing": False,
        "fees": [],
    }
    order.update(fields)
    store.orders[order_id] = order
    return order


def order_view(order: Record, api_base: str) -> Record:
    """The order as the v2 API answers it: its products, shipping_addresses and coupons links."""
    links = {}
    # (consignments come only with ?include=consignments, which the sandbox does not model)
    for name in ("products", "shipping_addresses", "coupons"):
        resource = f"/orders/{order['id']}/{name}"
        links[name] = {"url": f"{api_base}/v2{resource}", "resource": resource}
    return {**order, **links}


def order_line(store: StoreData, order_id: int, product: Record, variant: Record, quantity: int) -> Record:
    """One v2 order product for a catalog variant."""
    price = float(variant["price"])
    return {
        "id": store.new_id("order_product"),
        "order_id": order_id,
        "product_id": product["id"],
        "variant_id": variant["id"],
        "order_address_id": 0,
        "name": product["name"],
        "name_customer": product["name"],
        "name_merchant": product["name"],
        "sku": variant["sku"],
        "type": product.get("type", "physical"),
        "quantity": quantity,
        "base_price": money(price),
        "price_ex_tax": money(price),
        "price_inc_tax": money(price),
        "price_tax": money(0),
        "base_total": money(price * quantity),
        "total_ex_tax": money(price * quantity),
        "total_inc_tax": money(price * quantity),
        "total_tax": money(0),
        "quantity_shipped": 0,
        "product_options": [],
        "applied_discounts": [],
    }


def shipping_address(store: StoreData, order: Record, items: int) -> Record:
    """The order's one shipping address (v2 names), at the billing address."""
    address = {k: v for k, v in order["billing_address"].items() if k != "form_fields"}
    return {
        "id": store.new_id("shipping_address"),
        "order_id": order["id"],
        **address,
        "items_total": items,
        "items_shipped": 0,
        "shipping_method": "Flat Rate",
        "base_cost": order["base_shipping_cost"],
        "cost_ex_tax": order["shipping_cost_ex_tax"],
        "cost_inc_tax": order["shipping_cost_inc_tax"],
        "cost_tax": money(0),
        "cost_tax_class_id": 0,
        "base_handling_cost": money(0),
        "handling_cost_ex_tax": money(0),
        "handling_cost_inc_tax": money(0),
        "handling_cost_tax": money(0),
        "handling_cost_tax_class_id": 0,
        "shipping_zone_id": 1,
        "shipping_zone_name": "United States",
        "form_fields": [],
    }


def order_coupon(store: StoreData, order: Record, code: str, percent: float) -> Record:
    """A percentage coupon applied to `order` (v2 order coupon; type 1 is a percentage off)."""
    amount = round(float(order["subtotal_ex_tax"]) * percent / 100, 4)
    coupon = {
        "id": store.new_id("order_coupon"),
        "coupon_id": store.new_id("coupon"),
        "order_id": order["id"],
        "code": code,
        "amount": amount,
        "type": 1,
        "discount": percent,
    }
    order["coupon_discount"] = money(amount)
    store.order_coupons.setdefault(order["id"], []).append(coupon)
    return coupon
