"""What to maximize: objectives as small values that add, subtract and scale, as Lucid's and Lucent's do.

``Channel("conv_pw_8_relu", 3) - 0.5 * Channel("conv_pw_8_relu", 7) + 0.1 * TotalVariation()`` is a frozen
tree of terms. A term that reads a layer names it; ``None`` names the layer being visualized, the one whose
filters a grid shows. ``Filter()`` is each image's own filter there (a tensor, so a grid's batch of filters is
one traced step); ``ClassLogit()`` is each image's own class. The terms: a channel, a neuron, a direction (a
vector over a layer's channels), a whole layer (DeepDream), a class logit, Lucid's diversity, and penalties on
the picture (L1, L2, total variation, blur), subtracted with a weight.

A term has one text form, the Python that builds it (``str(term)``), and one canonical JSON (:meth:`Term.spec`:
sorted keys, no Python hashing) that the cache keys use; :func:`parse` reads either back and never runs code.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import MISSING, dataclass, fields, replace
from numbers import Integral, Real
from typing import Any, Callable, ClassVar, Mapping, Sequence

import tensorflow as tf

from convvis_core.errors import SettingsError
from convvis_core.featureviz import regularizers
from convvis_core.graph import LOGITS

TERMS: dict[str, type["Term"]] = {}  # kind -> class, for parsing a spec


@dataclass(frozen=True, eq=False)
class Reading:
    """What the terms read for one batch of images."""

    layer: str  # the layer being visualized: what a term's ``None`` layer means
    optimized: Mapping[str, tf.Tensor]  # path -> maps to maximize: before the activation of a rectified layer,
    # where gradients do not vanish
    outputs: Mapping[str, tf.Tensor]  # path -> the layer's real output
    filters: tf.Tensor  # (N,) each image's filter
    images: tf.Tensor  # (N, H, W, C) the pictures, 0..1

    def maps(self, layer: str | None, optimized: bool = True) -> tf.Tensor:
        return (self.optimized if optimized else self.outputs)[self.layer if layer is None else layer]

    def as_is(self) -> "Reading":
        """Every layer's real output in place of what is optimized: the objective as reported."""
        return replace(self, optimized=self.outputs)


class Term:
    """One objective; subclasses are frozen dataclasses with a ``kind`` and :meth:`value`."""

    kind: ClassVar[str]

    def __init_subclass__(cls) -> None:
        if "kind" in cls.__dict__:
            TERMS[cls.kind] = cls

    def __post_init__(self) -> None:
        """Each field checked and made canonical (numbers as floats, a vector as a tuple), so that equal terms
        compare equal and have one spec."""
        for field in fields(self):
            try:
                value = _FIELDS[field.name](getattr(self, field.name), field.default is None)
            except (TypeError, ValueError) as error:
                raise SettingsError(f"{type(self).__name__}: {field.name} {error}") from error
            object.__setattr__(self, field.name, value)

    def value(self, reading: Reading) -> tf.Tensor:
        """(N,): the objective for each image of the batch."""
        raise NotImplementedError

    def leaves(self) -> tuple["Term", ...]:
        """The terms that read something (every term but sums and weights)."""
        return (self,)

    def layers(self) -> set[str | None]:
        """The layers this objective reads (None: the one being visualized)."""
        return {leaf.layer for leaf in self.leaves() if isinstance(leaf, LayerTerm)}

    def problem(self, count: int, filters: Sequence[int]) -> str | None:
        """Why this term cannot read its layer, which has ``count`` channels, for these filters (None: it can)."""
        return None

    @property
    def own_filter(self) -> bool:
        """Whether it reads each image's own filter (which only a grid of filters gives)."""
        return False

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{f.name: _encode(getattr(self, f.name)) for f in fields(self)}}

    def spec(self) -> str:
        """Canonical JSON: the same objective gives the same string in any process."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        """The Python that builds it, which :func:`parse` reads: ``Channel("conv2_relu", 3)``, ``Neuron(index=3)``
        (what a field must be, by position; what it may be, by name where it is not its default)."""
        args = [_literal(getattr(self, f.name)) if f.default is MISSING else f"{f.name}={_literal(getattr(self, f.name))}"
                for f in fields(self) if f.default is MISSING or getattr(self, f.name) != f.default]
        return f"{type(self).__name__}({', '.join(args)})"

    def __add__(self, other: "Term") -> "Term":
        if not isinstance(other, Term):
            return NotImplemented
        return Sum(_terms(self) + _terms(other))

    def __sub__(self, other: "Term") -> "Term":
        return self + (-1.0) * other

    def __neg__(self) -> "Term":
        return (-1.0) * self

    def __mul__(self, weight: float) -> "Term":
        if not isinstance(weight, Real):
            return NotImplemented
        if isinstance(self, Scaled):
            return Scaled(float(weight) * self.weight, self.term)
        return Scaled(float(weight), self)

    __rmul__ = __mul__


class LayerTerm(Term):
    """A term that reads one layer's maps: its ``layer`` (a path; None: the layer being visualized)."""

    layer: str | None


class OwnFilterOrIndex(LayerTerm):
    """A term that reads one unit along its last axis: ``index``, or (None) each image's own filter of a
    grid, so one traced step serves a batch of different units."""

    index: int | None

    def pick(self, values: tf.Tensor, reading) -> tf.Tensor:
        """(N, units) -> (N,): each image's unit."""
        if self.index is None:
            return tf.gather(values, reading.filters, axis=1, batch_dims=1)
        return values[:, self.index]

    def problem(self, count, filters):
        return _out_of_range(filters if self.index is None else [self.index], count)

    @property
    def own_filter(self) -> bool:
        return self.index is None


def _terms(term: Term) -> tuple[Term, ...]:
    return term.terms if isinstance(term, Sum) else (term,)


def _spatial_mean(values: tf.Tensor) -> tf.Tensor:
    """(N, ...) -> (N,): the mean over every map position (none for class logits)."""
    return tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))


def _out_of_range(indices: Sequence[int], count: int) -> str | None:
    bad = [i for i in indices if not 0 <= i < count]
    return f"Filter {bad[0]} is out of range" if bad else None


@dataclass(frozen=True)
class Filter(LayerTerm):
    """Each image's own filter at the layer being visualized, averaged over the map without ``border`` map
    pixels on each side (a map too small for that keeps them): the default objective."""

    border: int = 0
    kind: ClassVar[str] = "filter"
    layer: ClassVar[None] = None
    own_filter: ClassVar[bool] = True

    def value(self, reading):
        picked = tf.gather(reading.maps(None), reading.filters, axis=-1, batch_dims=1)
        border = self.border
        if border and picked.shape.rank == 3:
            inner = picked[:, border:-border, border:-border]
            height, width = picked.shape[1:3]
            if height is None or width is None:
                picked = tf.cond(tf.size(inner) > 0, lambda: inner, lambda: picked)
            elif min(height, width) > 2 * border:
                picked = inner
        return _spatial_mean(picked)

    def problem(self, count, filters):
        return _out_of_range(filters, count)


@dataclass(frozen=True)
class Channel(LayerTerm):
    """One channel of a layer, averaged over the map."""

    layer: str | None
    index: int
    kind: ClassVar[str] = "channel"

    def value(self, reading):
        return _spatial_mean(reading.maps(self.layer)[..., self.index])

    def problem(self, count, filters):
        return _out_of_range([self.index], count)


@dataclass(frozen=True)
class Neuron(OwnFilterOrIndex):
    """One channel at one map position (None: the centre); ``index`` None: each image's own filter."""

    layer: str | None = None
    index: int | None = None
    row: int | None = None
    col: int | None = None
    kind: ClassVar[str] = "neuron"

    def value(self, reading):
        maps = reading.maps(self.layer)
        shape = tf.shape(maps)
        row = shape[1] // 2 if self.row is None else self.row
        col = shape[2] // 2 if self.col is None else self.col
        return self.pick(maps[:, row, col, :], reading)


@dataclass(frozen=True)
class Direction(LayerTerm):
    """A direction in a layer's channel space (a concept vector, a group of neurons): the dot product of
    each map position with ``vector``, one value per channel, averaged over the map (Lucid's ``direction``).
    Along one channel's unit vector it is that channel."""

    layer: str | None
    vector: tuple[float, ...]
    kind: ClassVar[str] = "direction"

    def value(self, reading):
        return _spatial_mean(tf.tensordot(reading.maps(self.layer), tf.constant(self.vector, tf.float32), axes=1))

    def problem(self, count, filters):
        return None if len(self.vector) == count else f"The direction has {len(self.vector)} values, one per channel"


@dataclass(frozen=True)
class DeepDream(LayerTerm):
    """The whole layer's mean squared activation, after its activation function (DeepDream): every filter
    at once, so a grid's filter only picks the picture's start."""

    layer: str | None = None
    kind: ClassVar[str] = "deepdream"

    def value(self, reading):
        return _spatial_mean(tf.square(reading.maps(self.layer, optimized=False)))


@dataclass(frozen=True)
class ClassLogit(OwnFilterOrIndex):
    """A class's pre-softmax score (classifiers only); ``index`` None: each image's own filter is its class,
    so a grid's units are the classes. Pictures are made at the model's input size."""

    index: int | None = None
    kind: ClassVar[str] = "class_logit"
    layer: ClassVar[str] = LOGITS

    def value(self, reading):
        return self.pick(reading.maps(LOGITS), reading)


@dataclass(frozen=True)
class Diversity(LayerTerm):
    """Lucid's diversity: minus each image's mean cosine similarity of its layer's Gram matrix with the
    other images'; it only means something when a batch holds several pictures of one objective."""

    layer: str | None = None
    kind: ClassVar[str] = "diversity"

    def value(self, reading):
        maps = reading.maps(self.layer)
        n, channels = tf.shape(maps)[0], tf.shape(maps)[3]
        flat = tf.reshape(maps, [n, -1, channels])
        gram = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [n, -1])
        gram = tf.math.l2_normalize(gram, axis=1)
        similarity = tf.matmul(gram, gram, transpose_b=True)
        others = tf.reduce_sum(similarity, axis=1) - tf.linalg.diag_part(similarity)
        return -others / tf.maximum(tf.cast(n, tf.float32) - 1.0, 1.0)


@dataclass(frozen=True)
class ImagePenalty(Term):
    """A number the picture alone gives, one per image (a penalty: subtract it with a weight); each
    penalty is a kind and one of :mod:`regularizers`' measures."""

    measure: ClassVar[Callable[[tf.Tensor], tf.Tensor]]

    def __init_subclass__(cls) -> None:
        cls.kind = cls.measure.__name__  # "l1", "total_variation", ...: the spec's kind is the measure's name
        super().__init_subclass__()

    def value(self, reading):
        return type(self).measure(reading.images)


def _image_penalty(name: str, measure: Callable[[tf.Tensor], tf.Tensor]) -> type[ImagePenalty]:
    """The penalty term of one of :mod:`regularizers`' measures (its docstring says what it favours)."""
    namespace = {"__doc__": measure.__doc__, "__module__": __name__, "__qualname__": name,
                 "measure": staticmethod(measure)}
    return dataclass(frozen=True)(type(name, (ImagePenalty,), namespace))


L1 = _image_penalty("L1", regularizers.l1)
L2 = _image_penalty("L2", regularizers.l2)
TotalVariation = _image_penalty("TotalVariation", regularizers.total_variation)
Blur = _image_penalty("Blur", regularizers.blur)


@dataclass(frozen=True)
class Scaled(Term):
    weight: float
    term: Term
    kind: ClassVar[str] = "scaled"

    def value(self, reading):
        return self.weight * self.term.value(reading)

    def leaves(self):
        return self.term.leaves()

    @property
    def own_filter(self) -> bool:
        return self.term.own_filter

    def __str__(self) -> str:
        inner = f"({self.term})" if isinstance(self.term, Sum) else str(self.term)
        return f"{self.weight!r} * {inner}"


@dataclass(frozen=True)
class Sum(Term):
    terms: tuple[Term, ...]
    kind: ClassVar[str] = "sum"

    def value(self, reading):
        return tf.add_n([t.value(reading) for t in self.terms])

    def leaves(self):
        return tuple(leaf for t in self.terms for leaf in t.leaves())

    @property
    def own_filter(self) -> bool:
        return any(t.own_filter for t in self.terms)

    def __str__(self) -> str:
        text = str(self.terms[0])
        for term in self.terms[1:]:
            negative = isinstance(term, Scaled) and term.weight < 0
            text += f" - {Scaled(-term.weight, term.term)}" if negative else f" + {term}"
        return text


def _layer(value: Any, optional: bool) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"must be a layer path (a string) or None, not {value!r}")
    return value


def _index(value: Any, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
        raise TypeError(f"must be a whole number from 0{', or None' if optional else ''}, not {value!r}")
    return int(value)


def _weight(value: Any, optional: bool) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise TypeError(f"must be a finite number, not {value!r}")
    return float(value)


def _vector(value: Any, optional: bool) -> tuple[float, ...]:
    values = tuple(_weight(v, False) for v in (value.tolist() if hasattr(value, "tolist") else value))
    if not values:
        raise ValueError("must hold one number per channel, not none")
    return values


def _term(value: Any, optional: bool) -> Term:
    if not isinstance(value, Term):
        raise TypeError(f"must be an objective term, not {value!r}")
    return value


def _term_tuple(value: Any, optional: bool) -> tuple[Term, ...]:
    terms = tuple(_term(v, False) for v in value)
    if not terms:
        raise ValueError("must hold at least one term")
    return terms


_FIELDS: dict[str, Callable[[Any, bool], Any]] = {  # field name -> its check (each name means one thing in every term)
    "layer": _layer, "index": _index, "row": _index, "col": _index, "border": _index,
    "weight": _weight, "vector": _vector, "term": _term, "terms": _term_tuple}


def _encode(value):
    if isinstance(value, Term):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def _literal(value) -> str:
    """A field's value as Python source."""
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, escapes Python reads the same
    if isinstance(value, tuple):
        return f"[{', '.join(repr(v) for v in value)}]"
    return repr(value)


def from_dict(data: Any) -> Term:
    """The term a :meth:`Term.to_dict` dictionary describes."""
    if not isinstance(data, dict) or data.get("kind") not in TERMS:
        kind = data.get("kind") if isinstance(data, dict) else data
        raise SettingsError(f"Unknown objective term {kind!r}; choose one of {', '.join(TERMS)}")
    data = dict(data)
    kind = data.pop("kind")
    decoded = {name: from_dict(value) if isinstance(value, dict)
               else [from_dict(v) if isinstance(v, dict) else v for v in value] if isinstance(value, list)
               else value for name, value in data.items()}
    try:
        return TERMS[kind](**decoded)
    except TypeError as error:  # missing or unknown fields
        raise SettingsError(f"Objective term {kind!r} takes {', '.join(f.name for f in fields(TERMS[kind]))}: "
                            f"{error}") from error


def parse(text: str) -> Term:
    """The term a text describes: its canonical JSON (:meth:`Term.spec`) or the Python that builds it
    (``Channel("conv2_relu", 3) - 0.5 * Channel("conv2_relu", 7)``, as ``str(term)`` writes), read by walking
    its syntax tree: only the terms' names, numbers, strings, lists, ``+``, ``-`` and ``*``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise SettingsError(f"The objective's JSON is not valid: {error}") from error
    try:
        built = _built(ast.parse(text, mode="eval").body)
    except SyntaxError as error:
        raise SettingsError(f"{text!r} is not an objective: {error.msg}. {_EXAMPLE}") from error
    if not isinstance(built, Term):
        raise SettingsError(f"{text!r} is a number, not an objective. {_EXAMPLE}")
    return built


_EXAMPLE = 'Write terms joined by +, - and numbers times them, e.g. Channel("conv2_relu", 3) - 0.5 * Channel(None, 7).'
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _built(node: ast.expr) -> Term | float:
    """What one node of an objective's syntax tree builds: a term or a number."""
    names = {cls.__name__: cls for cls in TERMS.values() if cls not in (Sum, Scaled)}  # those two are + and *
    try:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](_built(node.left), _built(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = _built(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Constant) and isinstance(node.value, Real) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            return names[node.func.id](*(_argument(a) for a in node.args),
                                       **{k.arg: _argument(k.value) for k in node.keywords})
    except (TypeError, ValueError) as error:  # two terms multiplied, a number added, a wrong argument
        raise SettingsError(f"{ast.unparse(node)!r}: {error}. {_EXAMPLE}") from error
    known = ", ".join(names)
    raise SettingsError(f"{ast.unparse(node)!r} is not part of an objective (known terms: {known}). {_EXAMPLE}")


def _argument(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{ast.unparse(node)} is not a layer path, number, list of numbers or None") from None


def per_class(objective: Term) -> bool:
    """Whether a grid of this objective's pictures shows classes: it maximizes each image's own class logit."""
    return ClassLogit() in objective.leaves()


PENALTIES: dict[str, type[Term]] = {"total variation": TotalVariation, "L2": L2, "L1": L1, "blur": Blur}


def penalized(objective: Term, weights: dict[str, float]) -> Term:
    """``objective`` minus each penalty of :data:`PENALTIES` named in ``weights`` times its weight (zero weights
    left out, so no penalty keeps the objective as it was)."""
    return sum((-weight * PENALTIES[name]() for name, weight in weights.items() if weight), objective)


def difference(weight: float, other: int) -> Term:
    """What the Filters page's "difference of two filters" adds to the objective: minus ``weight`` ×
    filter ``other``, so the picture excites the filter and not the other one."""
    return -weight * Channel(None, other)


def with_neuron(weight: float, other: int | None = None) -> Term:
    """What the Filters page's "filter × neuron" adds to the objective (Lucid's channel × neuron
    interaction): ``weight`` × filter ``other`` (None: the same filter) at the map's centre, so the
    filter's pattern fills the picture and the other's sits in the middle."""
    return weight * Neuron(None, other)
