"""A Terraform provider schema (the shape of `terraform providers schema -json`)
from a prebuilt CDK-for-Terraform provider wheel (cdktf-cdktf-provider-*,
cdktn-provider-*).

Such a wheel embeds an npm tarball: its `.jsii` manifest has every resource,
data source and ephemeral resource class with its config struct (argument
types, which are optional, which are blocks: "<name> block." in the docs), its
getters (the computed attributes) and the classes of nested objects; the
generated JavaScript beside it has what the manifest lacks: the Terraform
spelling of each name (`getStringAttribute('s3_us_east_1_...')`, `name:
...(struct.camelName)`), which lists wrap sets (`new XList(this, "x", true)`,
`Fn.tolist(...)`) and which arguments are write-only (`markWriteOnlyAttribute`,
or the provider's `_wo` naming, which older generators did not mark).

Not in either, so not in the schema: sensitivity, deprecation, descriptions,
and whether a one-element block is NestingSingle or a list with max_items 1
(served as the latter, the SDKv2 form most blocks here have).
"""
from __future__ import annotations

import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import IO, Any

_CLASS = re.compile(r"^class (\w+) extends [\w.]+ \{", re.M)
_GETTER = re.compile(r"\n\s+get (\w+)\(\) \{\n\s+return ([^\n]*);")
_NEW = re.compile(r"_(\w+) = new ([\w.]+)\(this, \"(\w+)\"(?:, (true|false))?\)")
_MAPPING = re.compile(r"^\s+([a-z0-9_]+): (.*)$", re.M)
_MAPPED_FROM = re.compile(r"(?:struct!?\.|this\._)(\w+)")
_WRITE_ONLY = re.compile(r"([a-z0-9_]+): this\.markWriteOnlyAttribute\(")
_ATTRIBUTE_NAME = re.compile(r"Attribute\('(\w+)'\)")
# A getter under its attribute's comment, possibly past the field it reads
# (`// system - ...`, `_system = new ...`, `get systemAttribute()`: renamed).
_COMMENTED_GETTER = re.compile(r"// ([a-z0-9_]+) - computed: [^\n]*\n(?:[^\n]*\n)?\s*get (\w+)\(\)")
_LINK_TEXT = re.compile(r"\{@link \S+ (\w+)\}")
_COMMENT = re.compile(r"// ([a-z0-9_]+) - computed: (true|false), optional: (?:true|false), required: (?:true|false)")

KINDS = {
    "TerraformResource": "resource_schemas",
    "TerraformDataSource": "data_source_schemas",
    "TerraformEphemeralResource": "ephemeral_resource_schemas",
}


class JsModule:
    """What one generated lib/<module>/index.js says about names, sets and
    write-only arguments."""

    def __init__(self, text: str):
        self.names: dict[str, str] = {}           # camelName -> terraform_name
        self.set_lists: set[str] = set()          # XList classes that wrap a set
        self.set_getters: set[tuple[str, str]] = set()   # (class, camelName) read through Fn.tolist
        self.dynamic_getters: set[tuple[str, str]] = set()  # (class, camelName) read as an interpolation
        self.computed: set[str] = set()           # terraform names the comments call computed
        self.write_only = set(_WRITE_ONLY.findall(text))
        for name, camel in _COMMENTED_GETTER.findall(text):
            self.names.setdefault(camel, name)
        for key, rhs in _MAPPING.findall(text):
            found = _MAPPED_FROM.search(rhs)
            # `value:` lines of the HCL renderers name the attribute above them.
            if found and not (key == "value" and found.group(1) != "value"):
                self.names.setdefault(found.group(1), key)
        for name, computed in _COMMENT.findall(text):
            if computed == "true":
                self.computed.add(name)
        starts = [(m.start(), m.group(1)) for m in _CLASS.finditer(text)]
        for i, (start, cls) in enumerate(starts):
            body = text[start:starts[i + 1][0] if i + 1 < len(starts) else len(text)]
            for camel, _list_cls, name, wraps in _NEW.findall(body):
                self.names.setdefault(camel, name)
                if wraps == "true":
                    self.set_lists.add(_list_cls.split(".")[-1])
            for camel, expr in _GETTER.findall(body):
                found = _ATTRIBUTE_NAME.search(expr)
                if found:
                    self.names.setdefault(camel, found.group(1))
                if "Fn.tolist(" in expr or "Fn.toset(" in expr:
                    self.set_getters.add((cls, camel))
                if "interpolationForAttribute(" in expr:
                    self.dynamic_getters.add((cls, camel))


def snake(camel: str) -> str:
    """The fallback spelling when the JavaScript names nothing (digits stay
    attached: s3UsEast1 -> s3_us_east1, which is why the JS is read first)."""
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


class Converter:
    def __init__(self, types: dict, modules: dict[str, JsModule], assembly: str):
        self.types, self.modules, self.assembly = types, modules, assembly

    # ------------------------------------------------------------- helpers
    def module(self, fqn: str) -> JsModule:
        loc = self.types[fqn].get("locationInModule", {}).get("filename", "")
        return self.modules.get(loc.split("/")[1] if loc.count("/") >= 2 else "", JsModule(""))

    def local(self, fqn: str | None) -> bool:
        return bool(fqn) and fqn in self.types

    def props(self, fqn: str | None) -> dict[str, dict]:
        """Own and locally inherited properties (not cdktf's meta-arguments)."""
        if not self.local(fqn):
            return {}
        t = self.types[fqn]
        out = {}
        for parent in t.get("interfaces", []):
            out.update(self.props(parent))
        for p in t.get("properties", []):
            if not p.get("static"):
                out[p["name"]] = p
        return out

    def name(self, fqn: str, camel: str) -> str:
        return self.module(fqn).names.get(camel) or snake(camel)

    @staticmethod
    def strip_resolvable(ty: dict) -> list[dict]:
        options = ty["union"]["types"] if "union" in ty else [ty]
        return [t for t in options if t.get("fqn", "").split(".")[-1] != "IResolvable"]

    def struct_of(self, ty: dict) -> tuple[str | None, bool]:
        """(datatype interface, is an array) when the type is a nested object."""
        for t in self.strip_resolvable(ty):
            if "collection" in t and t["collection"]["kind"] == "array":
                inner = t["collection"]["elementtype"]
                if self.local(inner.get("fqn")) and self.types[inner["fqn"]].get("datatype"):
                    return inner["fqn"], True
            if self.local(t.get("fqn")) and self.types[t["fqn"]].get("datatype"):
                return t["fqn"], False
        return None, False

    def element_class(self, cls_fqn: str | None, camel: str) -> tuple[str | None, str | None]:
        """For a getter returning an XList / XOutputReference / XMap: (the
        object class, the list class)."""
        p = self.props(cls_fqn).get(camel)
        if not p:
            return None, None
        for t in self.strip_resolvable(p["type"]):
            fqn = t.get("fqn")
            if not self.local(fqn):
                continue
            t2 = self.types[fqn]
            if t2.get("base", "").endswith(("ComplexList", "ComplexMap")):
                get = next((m for m in t2.get("methods", []) if m["name"] == "get"), None)
                ret = get and get.get("returns", {}).get("type", {}).get("fqn")
                return ret, fqn
            if t2.get("base", "").endswith("ComplexObject"):
                return fqn, None
        return None, None

    def wraps_set(self, list_cls: str | None) -> bool:
        """Whether an XList class of the bindings stands for a set."""
        if not list_cls:
            return False
        return list_cls.split(".")[-1] in self.module(list_cls).set_lists

    # --------------------------------------------------------------- types
    def cty(self, ty: dict, owner: str | None = None, camel: str | None = None):
        """The cty type (JSON form) of a jsii type."""
        options = self.strip_resolvable(ty)
        if not options:
            # A bare IResolvable getter: cdktf reads booleans that way, and
            # anything it cannot type through an interpolation.
            if owner and (owner.split(".")[-1], camel) in self.module(owner).dynamic_getters:
                return "dynamic"
            return "bool"
        if len(options) > 1:
            return "dynamic"
        t = options[0]
        if "primitive" in t:
            return {"string": "string", "number": "number", "boolean": "bool", "date": "string"}.get(
                t["primitive"], "dynamic")
        if "collection" in t:
            kind = "list" if t["collection"]["kind"] == "array" else "map"
            elem = self.cty(t["collection"]["elementtype"])
            if kind == "list" and owner and (owner.split(".")[-1], camel) in self.module(owner).set_getters:
                kind = "set"
            return [kind, elem]
        fqn = t.get("fqn", "")
        short = fqn.split(".")[-1]
        builtin = {"StringMap": ["map", "string"], "NumberMap": ["map", "number"], "BooleanMap": ["map", "bool"],
                   "AnyMap": ["map", "dynamic"], "StringMapList": ["list", ["map", "string"]],
                   "NumberMapList": ["list", ["map", "number"]], "BooleanMapList": ["list", ["map", "bool"]],
                   "AnyMapList": ["list", ["map", "dynamic"]], "StringListList": ["list", ["list", "string"]],
                   "NumberListList": ["list", ["list", "number"]]}
        if not self.local(fqn):
            return builtin.get(short, "dynamic")
        t2 = self.types[fqn]
        base = t2.get("base", "")
        if t2.get("datatype"):
            return self.object_type(None, fqn)
        if base.endswith(("ComplexList", "ComplexMap")):
            get = next((m for m in t2.get("methods", []) if m["name"] == "get"), None)
            elem_cls = get and get.get("returns", {}).get("type", {}).get("fqn")
            elem = self.object_type(elem_cls, None) if self.local(elem_cls) else "dynamic"
            if base.endswith("ComplexMap"):
                return ["map", elem]
            return ["set" if short in self.module(fqn).set_lists else "list", elem]
        if base.endswith("ComplexObject"):
            return self.object_type(fqn, None)
        return "dynamic"

    def object_type(self, cls_fqn: str | None, struct_fqn: str | None):
        """An object attribute's type: the struct's fields plus the class's
        computed ones (blocks inside an attribute are attributes too)."""
        attrs = {}
        for camel, (p, _configurable) in self.fields(cls_fqn, struct_fqn).items():
            owner = owner_of(camel, cls_fqn, struct_fqn, _configurable)
            sub, is_array = self.struct_of(p["type"]) if _configurable else (None, False)
            if sub:
                elem_cls, list_cls = self.element_class(cls_fqn, camel)
                inner = self.object_type(elem_cls, sub)
                if is_array:
                    inner = ["set" if self.wraps_set(list_cls) else "list", inner]
                attrs[self.name(owner, camel)] = inner
            else:
                attrs[self.name(owner, camel)] = self.cty(p["type"], cls_fqn, camel)
        return ["object", attrs]

    def fields(self, cls_fqn: str | None, struct_fqn: str | None) -> dict[str, tuple[dict, bool]]:
        """camelName -> (property, configurable): the struct's arguments, then
        the class getters that are not arguments (computed-only)."""
        struct = self.props(struct_fqn)
        out = {camel: (p, True) for camel, p in struct.items()}
        getters = self.props(cls_fqn)
        for camel, p in getters.items():
            if camel in out or camel == "internalValue":
                continue
            if camel.endswith("Input") and (camel[:-5] in struct or camel[:-5] in getters):
                continue
            if self.types[cls_fqn].get("base", "").endswith("TerraformProvider"):
                continue  # a provider has no computed attributes
            out[camel] = (p, False)
        return out

    # -------------------------------------------------------------- blocks
    def block(self, cls_fqn: str | None, struct_fqn: str | None, seen: tuple = ()) -> dict:
        if struct_fqn in seen:
            # The bindings share one struct for a recursive statement block
            # (wafv2); the real schema is unrolled to some depth: cut it here.
            return {}
        seen = seen + (struct_fqn,)
        attributes, block_types = {}, {}
        for camel, (p, configurable) in sorted(self.fields(cls_fqn, struct_fqn).items()):
            owner = owner_of(camel, cls_fqn, struct_fqn, configurable)
            name = self.name(owner, camel)
            if configurable and name == "alias" and self.types[cls_fqn or struct_fqn].get("base", "").endswith(
                    "TerraformProvider"):
                continue  # a meta-argument of provider blocks, not part of the schema
            sub, is_array = self.struct_of(p["type"]) if configurable else (None, False)
            summary = p.get("docs", {}).get("summary", "").strip()
            if sub and summary.endswith(" block."):
                elem_cls, list_cls = self.element_class(cls_fqn, camel)
                if list_cls is None and is_array:
                    list_cls = sub + "List" if self.local(sub + "List") else None
                wraps = self.wraps_set(list_cls)
                inner = self.block(elem_cls, sub, seen)
                # Terraform refuses set blocks holding a dynamic attribute (which
                # the bindings give wafv2's too-deep `statement`): serve a list.
                if wraps and has_dynamic(inner):
                    wraps = False
                nested: dict[str, Any] = {"nesting_mode": "set" if wraps else "list", "block": inner}
                if not p.get("optional"):
                    nested["min_items"] = 1
                if not is_array:
                    nested["max_items"] = 1
                block_types[name] = nested
                continue
            if sub:
                elem_cls, list_cls = self.element_class(cls_fqn, camel)
                ty = self.object_type(elem_cls, sub)
                if is_array:
                    if list_cls is None and self.local(sub + "List"):
                        list_cls = sub + "List"
                    ty = ["set" if self.wraps_set(list_cls) else "list", ty]
            else:
                ty = self.cty(p["type"], cls_fqn, camel)
            attr = {"type": ty}
            if not configurable:
                attr["computed"] = True
            elif p.get("optional"):
                attr["optional"] = True
                if name in self.module(owner).computed:
                    attr["computed"] = True
            else:
                attr["required"] = True
            if configurable and (name in self.module(owner).write_only or name.endswith("_wo")):
                attr["write_only"] = True
            attributes[name] = attr
        out = {}
        if attributes:
            out["attributes"] = attributes
        if block_types:
            out["block_types"] = block_types
        return out

    def schema(self) -> dict:
        out: dict[str, Any] = {"provider": None, "resource_schemas": {}, "data_source_schemas": {},
                               "ephemeral_resource_schemas": {}}
        for fqn, t in sorted(self.types.items()):
            if t["kind"] != "class" or not fqn.startswith(self.assembly + "."):
                continue
            base = t.get("base", "").split(".")[-1]
            if base not in KINDS and base != "TerraformProvider":
                continue
            params = t.get("initializer", {}).get("parameters", [])
            config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
            block = self.block(fqn, config)
            if base == "TerraformProvider":
                out["provider"] = {"version": 0, "block": block}
                continue
            link = _LINK_TEXT.search(t.get("docs", {}).get("summary", ""))
            if not link:
                raise ValueError(f"{fqn}: no Terraform type name in its docs")
            out[KINDS[base]][link.group(1)] = {"version": 0, "block": block}
        if out["provider"] is None:
            raise ValueError("no provider class in the manifest")
        return out


def owner_of(camel: str, cls_fqn: str | None, struct_fqn: str | None, configurable: bool) -> str:
    """The type a field of Converter.fields() was read from: the struct for an
    argument, the class for a computed getter (fields() only lists properties
    of types in the manifest, so the one it names is never None)."""
    owner = struct_fqn if configurable else cls_fqn
    if owner is None:
        raise ValueError(f"{camel}: a {'struct' if configurable else 'class'} field without its type")
    return owner


def has_dynamic(block: dict) -> bool:
    return any('"dynamic"' in json.dumps(a["type"]) for a in block.get("attributes", {}).values()) or any(
        has_dynamic(b["block"]) for b in block.get("block_types", {}).values())


def read_wheel(wheel: Path) -> tuple[dict, dict, dict[str, JsModule]]:
    """package.json, the manifest's types and the JS modules of a wheel,
    streamed from its embedded tarball (nothing is unpacked to disk)."""
    package: dict | None = None
    types: dict | None = None
    sources: dict[str, list[str]] = {}
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz"))
        with zf.open(member) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for entry in tar:
                if not entry.isfile():
                    continue
                if entry.name == "package/.jsii":
                    manifest = json.load(member_file(tar, entry))
                    types = manifest["types"]
                    assembly = manifest["name"]
                elif entry.name == "package/package.json":
                    package = json.load(member_file(tar, entry))
                elif entry.name.startswith("package/lib/") and entry.name.endswith(".js"):
                    # lib/<module>/index.js, and for large resources also
                    # lib/<module>/index-structs/structsN.js.
                    parts = entry.name.split("/")
                    if len(parts) >= 4:
                        sources.setdefault(parts[2], []).append(member_file(tar, entry).read().decode())
    if package is None or types is None:
        raise ValueError(f"{wheel.name}: no package.json or .jsii in its tarball")
    package["_assembly"] = assembly
    return package, types, {name: JsModule("\n".join(texts)) for name, texts in sources.items()}


def member_file(tar: tarfile.TarFile, entry: tarfile.TarInfo) -> IO[bytes]:
    """The content of a regular file of the tarball (extractfile's None is
    for other kinds of entry, which read_wheel skips)."""
    f = tar.extractfile(entry)
    if f is None:
        raise ValueError(f"{entry.name}: not a regular file")
    return f


def provider_of(package: dict) -> tuple[str, str]:
    """(registry source, provider version) that the bindings were generated from."""
    meta = (package.get("cdktn") or package.get("cdktf") or {}).get("provider") or {}
    return meta.get("name", ""), meta.get("version", "")


def convert_wheel(wheel: Path) -> tuple[dict, str, str]:
    package, types, modules = read_wheel(wheel)
    source, version = provider_of(package)
    return Converter(types, modules, package["_assembly"]).schema(), source, version


def to_proto(schema: dict, pb):
    """Terraform's JSON schema form -> a tfplugin6 GetProviderSchema.Response."""
    nesting = {"single": pb.Schema.NestedBlock.SINGLE, "list": pb.Schema.NestedBlock.LIST,
               "set": pb.Schema.NestedBlock.SET, "map": pb.Schema.NestedBlock.MAP}

    def block(src: dict, out) -> None:
        out.SetInParent()  # present even when empty: Terraform dereferences it
        for name, a in sorted(src.get("attributes", {}).items()):
            out.attributes.add(name=name, type=json.dumps(a["type"]).encode(), required=a.get("required", False),
                               optional=a.get("optional", False), computed=a.get("computed", False),
                               sensitive=a.get("sensitive", False), write_only=a.get("write_only", False))
        for name, b in sorted(src.get("block_types", {}).items()):
            nested = out.block_types.add(type_name=name, nesting=nesting[b["nesting_mode"]],
                                         min_items=b.get("min_items", 0), max_items=b.get("max_items", 0))
            block(b["block"], nested.block)

    def one(src: dict, out) -> None:
        out.version = src.get("version", 0)
        block(src["block"], out.block)

    resp = pb.GetProviderSchema.Response()
    one(schema["provider"], resp.provider)
    for field in ("resource_schemas", "data_source_schemas", "ephemeral_resource_schemas"):
        for name, src in schema.get(field, {}).items():
            one(src, getattr(resp, field)[name])
    return resp
