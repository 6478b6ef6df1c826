"""The v3 catalog areas of seed 003: products, variants, categories (in trees) and brands.

All four need the Products scope: `store_v2_products_read_only` to read, `store_v2_products` to write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from service.bigcommerce.access import READ, WRITE
from service.bigcommerce.guard import AreaApi, id_list, operation, present
from service.bigcommerce.records import (
    Brand,
    BrandFields,
    Category,
    CategoryTree,
    CategoryUpdate,
    NewCategory,
    NewProduct,
    NewVariant,
    Product,
    ProductFields,
    Variant,
    VariantFields,
    VariantUpdate,
)


class Products(AreaApi):
    """Catalog products: `api.products.get(12)`, `api.products.update(12, {"price": 9.5})`."""

    area = "products"

    @operation(READ, "GET /v3/catalog/products/{product_id}")
    def get(self, product_id: int, *, include: str | None = None) -> Product:
        """One product, optionally with `include="variants,images"`."""
        return cast(Product, self._data(f"/v3/catalog/products/{product_id}", present(include=include)))

    @operation(WRITE, "POST /v3/catalog/products")
    def create(self, fields: NewProduct) -> Product:
        """Create a product (name, type, weight and price are required); fires store/product/created."""
        return cast(Product, self._send("POST", "/v3/catalog/products", fields))

    @operation(WRITE, "PUT /v3/catalog/products/{product_id}")
    def update(self, product_id: int, fields: ProductFields) -> Product:
        """Change fields of a product (price, is_visible, inventory_level, …); fires store/product/updated."""
        return cast(Product, self._send("PUT", f"/v3/catalog/products/{product_id}", fields))

    @operation(WRITE, "DELETE /v3/catalog/products/{product_id}")
    def delete(self, product_id: int) -> None:
        """Delete a product for good; fires store/product/deleted."""
        self._client.send_json("DELETE", f"/v3/catalog/products/{product_id}", None)

    @operation(READ, "GET /v3/catalog/products")
    def list(
        self,
        *,
        keyword: str | None = None,
        sku: str | None = None,
        availability: str | None = None,
        name: str | None = None,
        ids: Iterable[int] | None = None,
        include: str | None = None,
    ) -> list[Product]:
        """Every product matching the filters (keyword, SKU, availability, `name:like`, `id:in`)."""
        params = present(keyword=keyword, sku=sku, availability=availability, include=include)
        if name:
            params["name:like"] = name
        if ids is not None:
            params["id:in"] = id_list(ids)
        return list(self._client.v3_items("/v3/catalog/products", params))


class Variants(AreaApi):
    """The variants of a product, each with its own SKU."""

    area = "variants"

    @operation(READ, "GET /v3/catalog/products/{product_id}/variants/{variant_id}")
    def get(self, product_id: int, variant_id: int) -> Variant:
        """One variant of a product."""
        return cast(Variant, self._data(f"/v3/catalog/products/{product_id}/variants/{variant_id}"))

    @operation(WRITE, "POST /v3/catalog/products/{product_id}/variants")
    def create(self, product_id: int, fields: NewVariant) -> Variant:
        """Add a variant to a product; fires store/product/updated."""
        return cast(Variant, self._send("POST", f"/v3/catalog/products/{product_id}/variants", fields))

    @operation(WRITE, "PUT /v3/catalog/products/{product_id}/variants/{variant_id}")
    def update(self, product_id: int, variant_id: int, fields: VariantFields) -> Variant:
        """Change one variant; fires store/product/updated."""
        path = f"/v3/catalog/products/{product_id}/variants/{variant_id}"
        return cast(Variant, self._send("PUT", path, fields))

    @operation(WRITE, "PUT /v3/catalog/variants")
    def update_many(self, updates: Iterable[VariantUpdate]) -> list[Variant]:
        """Batch-update variants of any products in one call (each item names its `id`)."""
        return cast(list[Variant], self._send("PUT", "/v3/catalog/variants", list(updates)))

    @operation(READ, "GET /v3/catalog/products/{product_id}/variants")
    def list(self, product_id: int) -> list[Variant]:
        """Every variant of a product."""
        return list(self._client.v3_items(f"/v3/catalog/products/{product_id}/variants"))


class Categories(AreaApi):
    """Category trees (one per channel) and the categories in them, written in bulk."""

    area = "categories"

    @operation(READ, "GET /v3/catalog/trees")
    def trees(self) -> list[CategoryTree]:
        """Every category tree."""
        return list(self._client.v3_items("/v3/catalog/trees"))

    @operation(WRITE, "POST /v3/catalog/trees/categories")
    def create(self, categories: Iterable[NewCategory]) -> list[Category]:
        """Create categories in bulk; fires store/category/created for each."""
        return cast(list[Category], self._send("POST", "/v3/catalog/trees/categories", list(categories)))

    @operation(WRITE, "PUT /v3/catalog/trees/categories")
    def update(self, updates: Iterable[CategoryUpdate]) -> None:
        """Update categories in bulk (each item names its `category_id`); fires store/category/updated.
        BigCommerce answers with counts only: read them back with `list(category_ids=...)`."""
        self._client.send_json("PUT", "/v3/catalog/trees/categories", list(updates))

    @operation(WRITE, "DELETE /v3/catalog/trees/categories")
    def delete(self, category_ids: Iterable[int]) -> None:
        """Delete categories by id; fires store/category/deleted for each."""
        params = {"category_id:in": id_list(category_ids)}
        self._client.request("DELETE", "/v3/catalog/trees/categories", params=params)

    @operation(READ, "GET /v3/catalog/trees/categories")
    def list(
        self,
        *,
        tree_ids: Iterable[int] | None = None,
        category_ids: Iterable[int] | None = None,
        parent_ids: Iterable[int] | None = None,
        name: str | None = None,
    ) -> list[Category]:
        """Categories of every tree, filtered by tree, id, parent or `name:like`."""
        params: dict[str, str | int | bool] = {}
        for key, values in (
            ("tree_id:in", tree_ids),
            ("category_id:in", category_ids),
            ("parent_id:in", parent_ids),
        ):
            if values is not None:
                params[key] = id_list(values)
        if name:
            params["name:like"] = name
        return list(self._client.v3_items("/v3/catalog/trees/categories", params))


class Brands(AreaApi):
    """Catalog brands."""

    area = "brands"

    @operation(READ, "GET /v3/catalog/brands/{brand_id}")
    def get(self, brand_id: int) -> Brand:
        """One brand."""
        return cast(Brand, self._data(f"/v3/catalog/brands/{brand_id}"))

    @operation(WRITE, "POST /v3/catalog/brands")
    def create(self, fields: BrandFields) -> Brand:
        """Create a brand (a name is required)."""
        return cast(Brand, self._send("POST", "/v3/catalog/brands", fields))

    @operation(WRITE, "PUT /v3/catalog/brands/{brand_id}")
    def update(self, brand_id: int, fields: BrandFields) -> Brand:
        """Change fields of a brand."""
        return cast(Brand, self._send("PUT", f"/v3/catalog/brands/{brand_id}", fields))

    @operation(WRITE, "DELETE /v3/catalog/brands/{brand_id}")
    def delete(self, brand_id: int) -> None:
        """Delete a brand."""
        self._client.send_json("DELETE", f"/v3/catalog/brands/{brand_id}", None)

    @operation(READ, "GET /v3/catalog/brands")
    def list(self, *, name: str | None = None, ids: Iterable[int] | None = None) -> list[Brand]:
        """Every brand, optionally by exact name or `id:in`."""
        params = present(name=name)
        if ids is not None:
            params["id:in"] = id_list(ids)
        return list(self._client.v3_items("/v3/catalog/brands", params))
