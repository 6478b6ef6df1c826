"""Typed shapes of what the 40 endpoints take and return: the fields the seed and BigCommerce's published
specs name. Results are the API's JSON objects (other fields stay in them, untyped); v3 `data` envelopes
are unwrapped, v2 answers are already flat."""

from __future__ import annotations

from typing import Any, Required, TypedDict


class Product(TypedDict, total=False):
    """A v3 catalog product."""

    id: int
    name: str
    type: str
    sku: str
    description: str
    weight: float
    price: float
    cost_price: float
    retail_price: float
    sale_price: float
    calculated_price: float
    categories: list[int]
    brand_id: int
    inventory_level: int
    inventory_tracking: str
    is_visible: bool
    availability: str
    base_variant_id: int
    date_created: str
    date_modified: str
    custom_url: dict[str, Any]
    variants: list[Variant]
    images: list[dict[str, Any]]


class _ProductFieldsCommon(TypedDict, total=False):
    """Product fields a create and an update share."""

    sku: str
    description: str
    cost_price: float
    retail_price: float
    sale_price: float
    categories: list[int]
    brand_id: int
    inventory_level: int
    inventory_tracking: str
    is_visible: bool
    availability: str


class ProductFields(_ProductFieldsCommon, total=False):
    """Writable product fields (an update sends only those given)."""

    name: str
    type: str
    weight: float
    price: float


class NewProduct(_ProductFieldsCommon, total=False):
    """A product to create: name, type, weight and price are required."""

    name: Required[str]
    type: Required[str]
    weight: Required[float]
    price: Required[float]


class OptionValue(TypedDict, total=False):
    """One option value a variant is made of."""

    id: int
    option_id: int
    label: str
    option_display_name: str


class Variant(TypedDict, total=False):
    """A product variant, with its own SKU."""

    id: int
    product_id: int
    sku: str
    sku_id: int
    price: float | None
    sale_price: float | None
    calculated_price: float
    inventory_level: int
    purchasing_disabled: bool
    option_values: list[OptionValue]


class _VariantFieldsCommon(TypedDict, total=False):
    """Variant fields every variant write takes."""

    price: float | None
    sale_price: float | None
    retail_price: float | None
    cost_price: float | None
    inventory_level: int
    purchasing_disabled: bool


class VariantFields(_VariantFieldsCommon, total=False):
    """Writable fields of one variant."""

    sku: str


class NewVariant(_VariantFieldsCommon, total=False):
    """A variant to create: a SKU and its option values."""

    sku: Required[str]
    option_values: list[OptionValue]


class VariantUpdate(_VariantFieldsCommon, total=False):
    """One item of a batch variant update: which variant, and what changes (not its SKU)."""

    id: Required[int]


class CategoryTree(TypedDict, total=False):
    """A category tree (one per channel)."""

    id: int
    name: str
    channels: list[int]


class Category(TypedDict, total=False):
    """A category inside a tree."""

    category_id: int
    category_uuid: str
    tree_id: int
    parent_id: int
    name: str
    description: str
    sort_order: int
    is_visible: bool
    url: dict[str, Any]


class _CategoryFieldsCommon(TypedDict, total=False):
    """Category fields a create and an update share."""

    parent_id: int
    tree_id: int
    description: str
    sort_order: int
    is_visible: bool


class CategoryFields(_CategoryFieldsCommon, total=False):
    """Writable category fields."""

    name: str


class NewCategory(_CategoryFieldsCommon, total=False):
    """A category to create: a name, under a parent (0 for the top) or in a tree."""

    name: Required[str]


class CategoryUpdate(CategoryFields, total=False):
    """One item of a bulk category update."""

    category_id: Required[int]


class Brand(TypedDict, total=False):
    """A catalog brand."""

    id: int
    name: str
    page_title: str
    meta_keywords: list[str]
    meta_description: str
    search_keywords: str
    image_url: str
    custom_url: dict[str, Any]


class BrandFields(TypedDict, total=False):
    """Writable brand fields; a create and an update (a PUT) both need the name."""

    name: Required[str]
    page_title: str
    meta_keywords: list[str]
    meta_description: str
    search_keywords: str
    image_url: str


class PriceList(TypedDict, total=False):
    """A price list overriding catalog prices for customer groups or channels."""

    id: int
    name: str
    active: bool
    date_created: str
    date_modified: str


class PriceListFields(TypedDict, total=False):
    """Writable price-list fields; a create and an update (a PUT) both need the name."""

    name: Required[str]
    active: bool


class PriceRecord(TypedDict, total=False):
    """A price list's price for one variant in one currency."""

    price_list_id: int
    variant_id: int
    product_id: int
    sku: str
    currency: str
    price: float
    sale_price: float
    retail_price: float
    map_price: float
    calculated_price: float


class PriceRecordUpsert(TypedDict, total=False):
    """One record of a bulk upsert: a variant (by id or SKU), a currency and its prices."""

    variant_id: int
    sku: str
    currency: Required[str]
    price: float
    sale_price: float
    retail_price: float
    map_price: float


class Address(TypedDict, total=False):
    """A v2 order address (v2 names: `state`, `zip`)."""

    first_name: str
    last_name: str
    company: str
    street_1: str
    street_2: str
    city: str
    state: str
    zip: str
    country: str
    country_iso2: str
    phone: str
    email: str


class ResourceLink(TypedDict, total=False):
    """A v2 order's link to a sub-resource (`products`, `shipping_addresses`, `coupons`)."""

    url: str
    resource: str


class Order(TypedDict, total=False):
    """A v2 order (its products are a link, listed by `orders.products`)."""

    id: int
    customer_id: int
    status_id: int
    status: str
    date_created: str
    date_modified: str
    subtotal_ex_tax: str
    subtotal_inc_tax: str
    total_ex_tax: str
    total_inc_tax: str
    items_total: int
    currency_code: str
    payment_status: str
    staff_notes: str
    customer_message: str
    channel_id: int
    cart_id: str
    is_deleted: bool
    billing_address: Address
    products: ResourceLink
    shipping_addresses: ResourceLink
    coupons: ResourceLink


class _OrderFieldsCommon(TypedDict, total=False):
    """Order fields a create and an update share."""

    status_id: int
    staff_notes: str
    customer_message: str
    customer_id: int


class OrderFields(_OrderFieldsCommon, total=False):
    """Writable order fields (status, notes, addresses and lines)."""

    billing_address: dict[str, Any]
    products: list[dict[str, Any]]


class NewOrder(_OrderFieldsCommon, total=False):
    """An order to create: its billing address and its product lines."""

    billing_address: Required[Address]
    products: Required[list[dict[str, Any]]]


class OrderProduct(TypedDict, total=False):
    """One line item of a v2 order."""

    id: int
    order_id: int
    product_id: int
    variant_id: int
    name: str
    sku: str
    quantity: int
    base_price: str
    total_inc_tax: str


class Customer(TypedDict, total=False):
    """A v3 customer."""

    id: int
    email: str
    first_name: str
    last_name: str
    company: str
    phone: str
    notes: str
    customer_group_id: int
    date_created: str
    date_modified: str
    channel_ids: list[int]
    origin_channel_id: int


class _CustomerFieldsCommon(TypedDict, total=False):
    """Customer fields a create and an update share."""

    company: str
    phone: str
    notes: str
    customer_group_id: int


class CustomerFields(_CustomerFieldsCommon, total=False):
    """Writable customer fields."""

    email: str
    first_name: str
    last_name: str


class NewCustomer(_CustomerFieldsCommon, total=False):
    """A customer to create: email, first and last name are required."""

    email: Required[str]
    first_name: Required[str]
    last_name: Required[str]


class CustomerUpdate(CustomerFields, total=False):
    """One item of a batch customer update."""

    id: Required[int]


class LineItem(TypedDict, total=False):
    """A cart line item to add: a product (and variant) and a quantity."""

    product_id: Required[int]
    variant_id: int
    quantity: Required[int]
    list_price: float


class Cart(TypedDict, total=False):
    """A server-side cart (its id is also its checkout's id)."""

    id: str
    customer_id: int
    channel_id: int
    email: str
    currency: dict[str, Any]
    base_amount: float
    cart_amount: float
    line_items: dict[str, list[dict[str, Any]]]
    created_time: str
    updated_time: str


class Checkout(TypedDict, total=False):
    """A checkout: its cart, addresses and totals; `order_id` once converted."""

    id: str
    cart: Cart
    billing_address: dict[str, Any]
    consignments: list[dict[str, Any]]
    order_id: str | None
    subtotal_inc_tax: float
    tax_total: float
    grand_total: float
    created_time: str
    updated_time: str


class CheckoutOrder(TypedDict):
    """What converting a checkout answers: the new order's id."""

    id: int


class Hook(TypedDict, total=False):
    """A webhook subscription of this token's API account."""

    id: int
    client_id: str
    store_hash: str
    scope: str
    destination: str
    headers: dict[str, str] | None
    is_active: bool
    created_at: int
    updated_at: int


class HookFields(TypedDict, total=False):
    """Writable hook fields."""

    scope: str
    destination: str
    is_active: bool
    headers: dict[str, str] | None


class HooksAdmin(TypedDict, total=False):
    """The hooks admin view: notification emails, every hook with its status, blocked domains."""

    emails: list[str]
    hooks_list: list[dict[str, Any]]
    blocked_domains: list[dict[str, Any]]
