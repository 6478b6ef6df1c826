"""BigCommerce's published OpenAPI files, read at test time from <repo root>/../shared/bigcommerce-specs.

Maps each route the sandbox serves to its documented operation and validates answers and request bodies
against the operation's schemas with openapi-schema-validator (OpenAPI 3.0 dialect).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "bigcommerce-specs"
MISSING = (
    f"BigCommerce's OpenAPI files are not at {SPECS}: put the `reference/` folder of BigCommerce's public "
    "docs repository (github.com/bigcommerce/docs, see SOURCE.txt) in ../shared/bigcommerce-specs"
)
PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Operation:
    """One documented (method, path) of one spec file."""

    spec: str
    method: str
    path: str

    @property
    def node(self) -> dict[str, Any]:
        node: dict[str, Any] = load(self.spec)["paths"][self.path][self.method.lower()]
        return node

    def statuses(self) -> set[str]:
        """The status codes the operation documents."""
        return {str(code) for code in self.node.get("responses", {})}

    def response_pointer(self, status: int) -> str | None:
        """JSON pointer of the JSON schema of the `status` answer, or None when it documents no body."""
        responses = self.node.get("responses", {})
        key = str(status) if str(status) in responses else "default"
        response = responses.get(key)
        pointer = f"/paths/{_escape(self.path)}/{self.method.lower()}/responses/{key}"
        while isinstance(response, dict) and "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
            response = resolve(self.spec, pointer)
        content = (response or {}).get("content", {})
        for media in content:
            if "json" in media and "schema" in content[media]:
                return f"{pointer}/content/{_escape(media)}/schema"
        return None

    def request_pointer(self) -> str | None:
        """JSON pointer of the JSON request body's schema, or None."""
        body = self.node.get("requestBody")
        pointer = f"/paths/{_escape(self.path)}/{self.method.lower()}/requestBody"
        while isinstance(body, dict) and "$ref" in body:
            pointer = body["$ref"].removeprefix("#")
            body = resolve(self.spec, pointer)
        content = (body or {}).get("content", {})
        for media in content:
            if "json" in media:
                return f"{pointer}/content/{_escape(media)}/schema"
        return None


def available() -> bool:
    """Whether the published specs are beside the repository."""
    return (SPECS / "reference").is_dir()


@functools.cache
def load(spec: str) -> dict[str, Any]:
    """One spec file, parsed (paths relative to bigcommerce-specs/reference)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the 65,000 lines in seconds
    loaded: dict[str, Any] = yaml.load((SPECS / "reference" / spec).read_text(), Loader=loader)  # noqa: S506
    return loaded


def resolve(spec: str, pointer: str) -> Any:
    """The node at a JSON pointer of a spec."""
    node: Any = load(spec)
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@functools.cache
def operations() -> dict[tuple[str, str], Operation]:
    """Every documented operation, keyed by (METHOD, /v2|/v3 path with parameters as {})."""
    found: dict[tuple[str, str], Operation] = {}
    for file in sorted((SPECS / "reference").rglob("*.yml")):
        spec = str(file.relative_to(SPECS / "reference"))
        document = load(spec)
        version = "/" + document["servers"][0]["url"].rstrip("/").rsplit("/", 1)[-1]
        for path, item in document["paths"].items():
            for method in item:
                if method in ("get", "post", "put", "delete"):
                    found[(method.upper(), shape(version + path))] = Operation(spec, method.upper(), path)
    return found


def shape(path: str) -> str:
    """A path template with every parameter written {} (the sandbox and the specs name them differently)."""
    return PARAM.sub("{}", path)


def operation(method: str, served_path: str) -> Operation | None:
    """The documented operation of a route the sandbox serves, or None."""
    return operations().get((method, shape(served_path)))


@functools.cache
def _registry(spec: str) -> Registry:
    resource: Resource[Any] = Resource.from_contents(load(spec), default_specification=DRAFT4)
    return Registry().with_resource(_uri(spec), resource)


def _uri(spec: str) -> str:
    return f"urn:bigcommerce-specs:{spec}"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator(spec: str, pointer: str, request: bool) -> Any:
    ref = {"$ref": f"{_uri(spec)}#{quote(pointer, safe='/~')}"}
    cls = OAS30WriteValidator if request else OAS30ReadValidator
    return cls(ref, registry=_registry(spec), format_checker=oas30_format_checker)


def problems(spec: str, pointer: str, instance: Any, request: bool = False) -> list[str]:
    """Where `instance` breaks the schema at `pointer` (responses read-side, request bodies write-side)."""
    validator = _validator(spec, pointer, request)
    errors: list[ValidationError] = sorted(
        (e for e in validator.iter_errors(instance) if not _overlap(e)), key=lambda e: list(e.path)
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: fails {e.validator}="
        f"{str(e.validator_value)[:60]} ({e.message[:160]})"
        for e in errors[:20]
    ]


def _overlap(error: ValidationError) -> bool:
    """A oneOf whose alternatives overlap (BigCommerce's cart items, order consignments): an instance valid
    under several of them matches the documented shapes, as their own examples do."""
    return error.validator == "oneOf" and "is valid under each of" in error.message
