"""Objectives as small values that add, subtract and scale, as Lucid's do.

``Filter() - 0.5 * Channel(7)`` is a frozen tree of terms; :meth:`Term.spec` is its canonical JSON
(sorted keys, no Python hashing), which :class:`~convvis_core.featureviz.settings.Settings` carries as
``recipe`` and the cache keys use. Every term reads the layer being visualized: ``Filter()`` is the
filter of each image of the batch (a tensor, so a batch of filters is one traced step), ``Channel(i)``
and ``Neuron(i, row, col)`` a fixed one; regularizers (``L1``, ``L2``, ``TotalVariation``, ``Blur``) read
the image and are subtracted with a weight: ``Filter() - 0.05 * TotalVariation()``. ``Diversity()`` reads
the whole batch (Lucid's diversity: minus the mean cosine similarity of each image's Gram matrix with the
others'), so it only means something when the batch holds several pictures of one filter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Callable, ClassVar

import tensorflow as tf

from convvis_core.featureviz import regularizers

TERMS: dict[str, type["Term"]] = {}  # kind -> class, for parsing a spec


class Term:
    """One objective; subclasses are frozen dataclasses with a ``kind`` and :meth:`value`."""

    kind: ClassVar[str]

    def __init_subclass__(cls) -> None:
        if "kind" in cls.__dict__:
            TERMS[cls.kind] = cls

    def value(self, maps: tf.Tensor, filters: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
        """(N,) from the layer's maps (N, H, W, C), each image's filter (N,) and the images (N, H, W, C)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def channels(self) -> set[int]:
        """The fixed channel indices this recipe reads (to check them against the layer)."""
        found = set()
        for f in fields(self):
            value = getattr(self, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Term):
                    found |= item.channels()
        if isinstance(self, (Channel, Neuron)) and self.index is not None:
            found.add(self.index)
        return found

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{f.name: _encode(getattr(self, f.name)) for f in fields(self)}}

    def spec(self) -> str:
        """Canonical JSON: the same recipe gives the same string in any process."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def __add__(self, other: "Term") -> "Term":
        return Sum(_terms(self) + _terms(other))

    def __sub__(self, other: "Term") -> "Term":
        return self + (-1.0) * other

    def __neg__(self) -> "Term":
        return (-1.0) * self

    def __mul__(self, weight: float) -> "Term":
        if not isinstance(weight, (int, float)):
            return NotImplemented
        if isinstance(self, Scaled):
            return Scaled(float(weight) * self.weight, self.term)
        return Scaled(float(weight), self)

    __rmul__ = __mul__


def _terms(term: Term) -> tuple[Term, ...]:
    return term.terms if isinstance(term, Sum) else (term,)


def _encode(value):
    if isinstance(value, Term):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def from_dict(data: dict) -> Term:
    data = dict(data)
    kind = data.pop("kind")
    if kind not in TERMS:
        raise ValueError(f"Unknown objective term {kind!r}; choose one of {', '.join(TERMS)}")
    if kind == "sum":
        return Sum(tuple(from_dict(t) for t in data["terms"]))
    if kind == "scaled":
        return Scaled(float(data["weight"]), from_dict(data["term"]))
    return TERMS[kind](**data)


def parse(spec: str) -> Term:
    """The term a :meth:`Term.spec` string describes."""
    return from_dict(json.loads(spec))


def _mean_of(channel: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(channel, axis=[1, 2])


@dataclass(frozen=True)
class Filter(Term):
    """Each image's own filter, averaged over the map (the default objective)."""
    kind: ClassVar[str] = "filter"

    def value(self, maps, filters, images):
        return _mean_of(tf.gather(maps, filters, axis=3, batch_dims=1))

    def describe(self) -> str:
        return "the filter"


@dataclass(frozen=True)
class Channel(Term):
    """A fixed channel, averaged over the map."""
    index: int
    kind: ClassVar[str] = "channel"

    def value(self, maps, filters, images):
        return _mean_of(maps[..., self.index])

    def describe(self) -> str:
        return f"filter {self.index}"


@dataclass(frozen=True)
class Neuron(Term):
    """One channel at one map position (None: the centre); ``index`` None: each image's own filter."""
    index: int | None = None
    row: int | None = None
    col: int | None = None
    kind: ClassVar[str] = "neuron"

    def value(self, maps, filters, images):
        shape = tf.shape(maps)
        row = shape[1] // 2 if self.row is None else self.row
        col = shape[2] // 2 if self.col is None else self.col
        at = maps[:, row, col, :]
        if self.index is None:
            return tf.gather(at, filters, axis=1, batch_dims=1)
        return at[:, self.index]

    def describe(self) -> str:
        where = "the centre" if self.row is None and self.col is None else f"({self.row}, {self.col})"
        return f"{'the filter' if self.index is None else f'filter {self.index}'} at {where}"


@dataclass(frozen=True)
class Diversity(Term):
    """Lucid's diversity: minus each image's mean cosine similarity of Gram matrices with the others'."""
    kind: ClassVar[str] = "diversity"

    def value(self, maps, filters, images):
        n, channels = tf.shape(maps)[0], tf.shape(maps)[3]
        flat = tf.reshape(maps, [n, -1, channels])
        gram = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [n, -1])
        gram = tf.math.l2_normalize(gram, axis=1)
        similarity = tf.matmul(gram, gram, transpose_b=True)
        others = tf.reduce_sum(similarity, axis=1) - tf.linalg.diag_part(similarity)
        return -others / tf.maximum(tf.cast(n, tf.float32) - 1.0, 1.0)

    def describe(self) -> str:
        return "diversity"


@dataclass(frozen=True)
class ImagePenalty(Term):
    """A number the picture alone gives, one per image (a penalty: subtract it with a weight); each
    penalty is a kind, a label and one of :mod:`regularizers`' measures."""

    label: ClassVar[str]
    measure: ClassVar[Callable[[tf.Tensor], tf.Tensor]]

    def __init_subclass__(cls) -> None:
        cls.kind = cls.measure.__name__  # "l1", "total_variation", ...: the spec's kind is the measure's name
        super().__init_subclass__()

    def value(self, maps, filters, images):
        return type(self).measure(images)

    def describe(self) -> str:
        return self.label


def _image_penalty(name: str, label: str, measure: Callable[[tf.Tensor], tf.Tensor]) -> type[ImagePenalty]:
    """The penalty term of one of :mod:`regularizers`' measures (its docstring says what it favours)."""
    namespace = {"__doc__": measure.__doc__, "__module__": __name__, "__qualname__": name, "label": label,
                 "measure": staticmethod(measure)}
    return dataclass(frozen=True)(type(name, (ImagePenalty,), namespace))


L1 = _image_penalty("L1", "L1", regularizers.l1)
L2 = _image_penalty("L2", "L2", regularizers.l2)
TotalVariation = _image_penalty("TotalVariation", "total variation", regularizers.total_variation)
Blur = _image_penalty("Blur", "blur", regularizers.blur)


@dataclass(frozen=True)
class Scaled(Term):
    weight: float
    term: Term
    kind: ClassVar[str] = "scaled"

    def value(self, maps, filters, images):
        return self.weight * self.term.value(maps, filters, images)

    def describe(self) -> str:
        return f"{self.weight:g} × {self.term.describe()}"


@dataclass(frozen=True)
class Sum(Term):
    terms: tuple[Term, ...]
    kind: ClassVar[str] = "sum"

    def value(self, maps, filters, images):
        return tf.add_n([t.value(maps, filters, images) for t in self.terms])

    def describe(self) -> str:
        text = " + ".join(t.describe() for t in self.terms)
        return text.replace("+ -", "− ")


PENALTIES: dict[str, type[Term]] = {"total variation": TotalVariation, "L2": L2, "L1": L1, "blur": Blur}


def penalized(recipe: str, weights: dict[str, float]) -> str:
    """The spec of ``recipe`` (a spec; "": the objective alone) minus each penalty of :data:`PENALTIES`
    named in ``weights`` times its weight (zero weights left out, so no penalty keeps the recipe as it was)."""
    terms = ([parse(recipe)] if recipe else []) + [-weight * PENALTIES[name]() for name, weight in weights.items() if weight]
    return sum(terms[1:], terms[0]).spec() if terms else ""


def difference(weight: float, other: int) -> Term:
    """What the Filters page's "difference of two filters" adds to the objective: minus ``weight`` ×
    filter ``other``, so the picture excites the filter and not the other one."""
    return -weight * Channel(other)


def with_neuron(weight: float, other: int | None = None) -> Term:
    """What the Filters page's "filter × neuron" adds to the objective (Lucid's channel × neuron
    interaction): ``weight`` × filter ``other`` (None: the same filter) at the map's centre, so the
    filter's pattern fills the picture and the other's sits in the middle."""
    return weight * Neuron(other)
