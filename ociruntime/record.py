"""`@record`: a dataclass-like decorator for plain data holders, without importing dataclasses.

`dataclasses` pulls in `inspect`, `re` and more (~20 ms); the runtime only needs an __init__
that takes the annotated fields positionally or by name, with defaults. Mutable defaults
(list, dict, set) are copied per instance, so `x: list[str] = []` is safe here.
"""

from __future__ import annotations

_MUTABLE = (list, dict, set)


def record(cls: type) -> type:
    """Give `cls` an __init__ and __repr__ built from its annotated fields."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            if name not in names:
                names.append(name)
    defaults = {n: getattr(cls, n) for n in names if hasattr(cls, n)}

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments")
        given = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names or key in given:
                raise TypeError(f"{cls.__name__}() got an unexpected argument {key!r}")
            given[key] = value
        for name in names:
            if name in given:
                value = given[name]
            elif name in defaults:
                value = defaults[name]
                if isinstance(value, _MUTABLE):
                    value = type(value)(value)
            else:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
            object.__setattr__(self, name, value)

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__name__}({inner})"

    def __eq__(self: object, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[assignment]
    cls.__eq__ = __eq__  # type: ignore[assignment]
    cls.__hash__ = None  # type: ignore[assignment]
    return cls
