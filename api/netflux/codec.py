"""Process-image definitions: how a Netflux payload maps to named fields.

Two ways to say it, both giving an :class:`ImageCodec`:

* a dataclass type with ``to_bytes()``, ``from_bytes(data)`` and ``get_size()`` (as the
  reference implementation's ``NetfluxData``): :meth:`ImageCodec.from_type`;
* a :mod:`struct` format and field names: ``ImageCodec("<ffIII", ["a", "b", ...])``.

Wrong field names and values that do not fit their field raise ``ValueError`` naming
the field and the value.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Any, Sequence


#: what packing a value that does not fit its field raises
_PACK_ERRORS = (struct.error, OverflowError, TypeError)


class ImageCodec:
    """Encode/decode one process image: a ``struct`` layout with named fields."""

    def __init__(self, fmt: str, fields: Sequence[str],
                 defaults: dict[str, Any] | None = None) -> None:
        if not isinstance(fmt, str):
            raise TypeError(f"image format must be a struct format string, not {fmt!r}")
        try:
            self._struct = struct.Struct(fmt)
        except struct.error as exc:
            raise ValueError(f"image format {fmt!r} is not a struct format: {exc}") from None
        names = list(fields)
        n = len(self._struct.unpack(bytes(self._struct.size)))
        if len(names) != n or len(set(names)) != n or not all(
                isinstance(f, str) and f.isidentifier() for f in names):
            raise ValueError(f"image format {fmt!r} has {n} values: give {n} distinct field "
                             f"names, not {names!r}")
        self.fmt = fmt
        self._size = self._struct.size
        self.fields: tuple[str, ...] = tuple(names)
        zero = self._struct.unpack(bytes(self._struct.size))
        self.defaults: dict[str, Any] = dict(zip(self.fields, zero))
        if defaults:
            self.defaults.update(self.check_fields(defaults))
        self._type: type | None = None
        self.encode(self.defaults)  # defaults must fit

    @property
    def size(self) -> int:
        """Payload bytes of one image."""
        return self._size

    @classmethod
    def from_type(cls, data_type: type) -> "ImageCodec":
        """A codec for a reference-style data class (``to_bytes``/``from_bytes``/
        ``get_size``); its fields are the dataclass fields, objects of that type come back."""
        for need in ("to_bytes", "from_bytes", "get_size"):
            if not callable(getattr(data_type, need, None)):
                raise TypeError(f"data type {data_type!r} has no {need}(): give a dataclass "
                                f"with to_bytes/from_bytes/get_size, or a struct format")
        if not dataclasses.is_dataclass(data_type):
            raise TypeError(f"data type {data_type!r} is not a dataclass")
        codec = cls.__new__(cls)
        codec._struct = None  # type: ignore[assignment]
        codec.fmt = ""
        codec.fields = tuple(f.name for f in dataclasses.fields(data_type))
        codec._type = data_type
        sample = data_type()
        codec.defaults = {f: getattr(sample, f) for f in codec.fields}
        size = data_type.get_size()
        if not isinstance(size, int) or size < 0 or len(sample.to_bytes()) != size:
            raise ValueError(f"{data_type.__name__}.get_size() is {size!r} but to_bytes() "
                             f"gives {len(sample.to_bytes())} bytes")
        codec._size = size
        return codec

    def check_fields(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` if every name is a field (ValueError naming the unknown ones)."""
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            raise ValueError(f"unknown image field(s) {unknown}: the fields are "
                             f"{list(self.fields)}")
        return dict(values)

    def encode(self, values: dict[str, Any]) -> bytes:
        """The payload of an image with these field values (all fields); ValueError
        naming the field whose value does not fit."""
        try:
            data = self._pack(values)
        except _PACK_ERRORS as exc:
            raise self._misfit(values, exc) from None
        if len(data) != self._size:
            raise ValueError(f"{self._name}.to_bytes() gave {len(data)} bytes, "
                             f"not get_size() = {self._size}")
        return data

    @property
    def _name(self) -> str:
        """What messages call this image definition."""
        return self._type.__name__ if self._type is not None else f"format {self.fmt!r}"

    def _pack(self, values: dict[str, Any]) -> bytes:
        if self._type is not None:
            return bytes(self._type(**values).to_bytes())
        return self._struct.pack(*(values[f] for f in self.fields))

    def _misfit(self, values: dict[str, Any], exc: Exception) -> ValueError:
        """The error of ``values`` that do not pack: it names the first field that does
        not pack on its own (among the defaults), else the whole image."""
        for f in self.fields:
            try:
                self._pack({**self.defaults, f: values[f]})
            except _PACK_ERRORS:
                return ValueError(f"image field {f}={values[f]!r} does not fit {self._name}: "
                                  f"{exc}")
        return ValueError(f"image {values!r} does not fit {self._name}: {exc}")

    def decode(self, data: bytes) -> Any:
        """An image's fields: an object of the data type, or a dict for a struct codec."""
        if self._type is not None:
            return self._type.from_bytes(bytes(data))
        return dict(zip(self.fields, self._struct.unpack(bytes(data[:self.size]))))

    def values_of(self, image: Any) -> dict[str, Any]:
        """Field values of a decoded image (object or dict)."""
        if isinstance(image, dict):
            return dict(image)
        return {f: getattr(image, f) for f in self.fields}


def as_codec(data: Any, fields: Sequence[str] | None = None) -> ImageCodec:
    """An :class:`ImageCodec` from a codec, a data type, or a struct format + fields."""
    if isinstance(data, ImageCodec):
        return data
    if isinstance(data, str):
        if fields is None:
            raise ValueError(f"image format {data!r} needs its field names (fields=...)")
        return ImageCodec(data, fields)
    if isinstance(data, type):
        return ImageCodec.from_type(data)
    raise TypeError(f"image definition must be an ImageCodec, a data class or a struct "
                    f"format string, not {data!r}")


__all__ = ["ImageCodec", "as_codec"]
