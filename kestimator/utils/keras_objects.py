"""The `get` / `serialize` / `deserialize` trio shared by Keras object modules (constraints, regularizers,
initializers).

Each such module keeps its classes and public functions; it builds one `ObjectCatalogue` and exposes the
catalogue's bound methods under Keras's names. Deserializing only looks names up in the module's own table
and in `custom_objects`: nothing is imported or run to find a class named in a file.
"""
from ..errors import InvalidArgumentError, UnsafeFileError


class ObjectCatalogue:
    """Serialization of one kind of Keras object.

    Args:
        kind: the word used in messages ("constraint", "regularizer").
        module: the Keras module name written into configs ("keras.constraints").
        base: the base class; its instances serialize as `{module, class_name, config, registered_name}`.
        classes: `{class name or alias: class}` accepted in config dicts.
        names: `{string identifier: factory called with no arguments}` accepted as plain strings
            (default: `classes`).
        config_of: obj -> its config dict (default: `obj.get_config()`).
        ignored_args: config keys dropped before construction (Keras writes "dtype" into some configs).
        instantiate_classes: `get(SomeClass)` returns `SomeClass()` (Keras does so for initializers; for
            constraints and regularizers it returns the class, a callable, unchanged).
    """

    def __init__(self, kind, module, base, classes, names=None, config_of=None, ignored_args=(),
                 instantiate_classes=False):
        self.kind, self.module, self.base = kind, module, base
        self.classes = dict(classes)
        self.names = dict(self.classes if names is None else names)
        self.config_of = config_of or (lambda obj: obj.get_config())
        self.ignored_args = tuple(ignored_args)
        self.instantiate_classes = instantiate_classes

    def serialize(self, obj):
        """Keras's JSON form of `obj`: None, a function's name, or a class_name/config dict.

        Raises:
            InvalidArgumentError: `obj` is neither an instance of the base class nor a named function.
        """
        if obj is None:
            return None
        if not isinstance(obj, self.base):
            name = getattr(obj, "__name__", None)
            if name is None:
                raise InvalidArgumentError(f"cannot serialize {self.kind} {obj!r}")
            return name
        return {"module": self.module, "class_name": type(obj).__name__, "config": self.config_of(obj),
                "registered_name": None}

    def deserialize(self, config, custom_objects=None):
        """An object from Keras's JSON form; names resolve only in this catalogue or `custom_objects`.

        Raises:
            UnsafeFileError: an unknown name or class name.
            InvalidArgumentError: `config` is neither a name nor a `{class_name, config}` dict.
        """
        custom_objects = custom_objects or {}
        if isinstance(config, str):
            if config in custom_objects:
                obj = custom_objects[config]
                return obj() if isinstance(obj, type) else obj
            factory = self.names.get(config)
            if factory is None:
                raise UnsafeFileError(f"unknown {self.kind} {config!r}: not a kestimator {self.kind} and not in "
                                      "custom_objects")
            return factory()
        if not isinstance(config, dict) or "class_name" not in config:
            raise InvalidArgumentError(f"a {self.kind} config must be a name or a {{class_name, config}} dict, "
                                       f"got {config!r}")
        name = config["class_name"]
        cls = custom_objects.get(name) or self.classes.get(name)
        if cls is None:
            raise UnsafeFileError(f"unknown {self.kind} class {name!r}: not a kestimator {self.kind} and not in "
                                  "custom_objects")
        args = dict(config.get("config") or {})
        for key in self.ignored_args:
            args.pop(key, None)
        return cls.from_config(args) if hasattr(cls, "from_config") else cls(**args)

    def get(self, identifier):
        """An object from None, a name, a config dict, an instance or a callable.

        Raises:
            InvalidArgumentError: the identifier names no object of this kind.
        """
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if self.instantiate_classes and isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()
        if isinstance(identifier, (str, dict)):
            try:
                return self.deserialize(identifier)
            except UnsafeFileError as e:
                raise InvalidArgumentError(str(e)) from None
        if callable(identifier):
            return identifier
        raise InvalidArgumentError(f"cannot interpret {identifier!r} as a {self.kind}")
