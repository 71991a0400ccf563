"""Keras's serialization of small named objects (regularizers, constraints): by name, by dict, both ways.

``KerasObjects(kind, base, module, classes, by_name, callable_hint)`` gives the ``get``,
``serialize`` and ``deserialize`` functions of a Keras module such as ``keras.regularizers``:
Keras 3's ``{"module", "class_name", "config", "registered_name"}`` dicts, names (the class
names and Keras's snake-case aliases in ``by_name``), classes and instances. Only the
built-in classes are read back: a dict naming another module is refused, since a config
never makes convscope import code.
"""

from __future__ import annotations

import inspect


class KerasObject:
    """What a small Keras object (a regularizer, a constraint) is besides its math: ``get_config`` (none here),
    ``from_config`` refusing keys its constructor does not take, and a repr of its config."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        accepted = set(inspect.signature(cls).parameters)
        unexpected = sorted(set(config) - accepted)
        if unexpected:
            raise TypeError(f"{cls.__name__}.from_config: unexpected config keys {unexpected}, "
                            f"expected a subset of {sorted(accepted)}")
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class KerasObjects:
    def __init__(self, kind: str, base: type, module: str, classes, by_name: dict, callable_hint: str):
        self.kind, self.base, self.module, self.by_name = kind, base, module, by_name
        self.classes, self.callable_hint = tuple(classes), callable_hint
        self.owner = f"{kind}s"

    def lookup(self, name: str) -> type:
        if name not in self.by_name:
            raise ValueError(f"{self.owner}: unknown {self.kind} {name!r}, expected one of {sorted(self.by_name)}")
        return self.by_name[name]

    def serialize(self, obj) -> dict | None:
        """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of the object; None stays None."""
        if obj is None:
            return None
        if not isinstance(obj, self.base):
            raise TypeError(f"{self.owner}.serialize: expected a {self.base.__name__} or None, "
                            f"received {obj!r} of type {type(obj).__name__}")
        builtin = self.by_name.get(type(obj).__name__) is type(obj)
        return {"module": self.module if builtin else type(obj).__module__, "class_name": type(obj).__name__,
                "config": obj.get_config(), "registered_name": None}

    def deserialize(self, config):
        """The object of ``serialize``'s dict (or of ``{"class_name", "config"}``, or of a name)."""
        if isinstance(config, str):
            return self.lookup(config)()
        if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(
                config.get("config", {}), dict):
            raise ValueError(f"{self.owner}.deserialize: expected a dict with a string 'class_name' and a 'config' "
                             f"dict, received {config!r}")
        module, name = config.get("module"), config["class_name"]
        if module not in (None, self.module) or config.get("registered_name") not in (None, name):
            raise ValueError(f"{self.owner}.deserialize: {name!r} from module {module!r} is not a built-in "
                             f"{self.kind}; convscope reads {sorted(cls.__name__ for cls in self.classes)}")
        return self.lookup(name).from_config(dict(config.get("config") or {}))

    def get(self, identifier):
        """The object from None (None), a name, a serialized dict, a class or an instance."""
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if inspect.isclass(identifier) and issubclass(identifier, self.base):
            return identifier()
        if isinstance(identifier, (str, dict)):
            return self.deserialize(identifier)
        if callable(identifier):
            raise TypeError(f"{self.owner}.get: {identifier!r} is a plain callable{self.callable_hint}")
        raise TypeError(f"{self.owner}.get: expected None, a name, a serialized dict or a {self.base.__name__}, "
                        f"received {identifier!r} of type {type(identifier).__name__}")
