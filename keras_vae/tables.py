"""Tables (CSV, Parquet or a pandas DataFrame) as the float matrix of a mixed observation model.

:class:`TableSchema` decides, column by column, how a table is modelled:

- ``"numeric"``: a Gaussian column, standardised with the training rows'
  mean and standard deviation (stored in the schema) and decoded back in
  its original units (rounded for integer columns);
- ``"binary"``: a Bernoulli column, for a column with exactly two values
  (booleans, 0/1, "yes"/"no", ...), encoded 0 and 1;
- ``"categorical"``: a Categorical column, for strings, pandas categories
  and integer columns with at most ``max_categories`` values, encoded as
  the class index.

The model's matrix holds the numeric columns first, then the binary ones,
then the categorical ones, so that :meth:`TableSchema.observation` is one
``MixedObservation`` of a ``GaussianObservation``, a ``BernoulliObservation``
and a ``CategoricalObservation`` (those present). The schema is plain JSON
(:meth:`TableSchema.to_json`); ``keras-vae train`` stores it beside the model
as ``schema.json``.

Example:

```python
frame = read_table("patients.csv")
schema = TableSchema.infer(frame)
x = schema.encode(frame)                      # float32 [N, schema.width]
model = keras_vae.VAE(schema.width, likelihood=schema.observation())
model.compile("adam"); model.fit(x, epochs=50)
table = schema.decode(model.sample(100)["x_mean"])   # a DataFrame like frame
```
"""

import dataclasses
import json
import os
import pathlib

import numpy as np

KINDS = ("numeric", "binary", "categorical")
#: File suffixes read by :func:`read_table`.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
#: Integer columns with at most this many distinct values are categorical by default.
MAX_CATEGORIES = 10


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "Tables need pandas: pip install 'keras-vae[tables]' (or pip install pandas pyarrow)."
        ) from None
    return pd


def is_table_path(path):
    """Whether ``path`` names a table by its suffix (``.csv``, ``.tsv``, ``.parquet``, ``.pq``).

    Args:
        path: str or path-like.

    Returns:
        bool.
    """
    return pathlib.Path(os.fspath(path)).suffix.lower() in TABLE_SUFFIXES


def read_table(path):
    """Reads a CSV, TSV or Parquet file as a DataFrame, with one clear error for a malformed file.

    Args:
        path: a ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` file.

    Returns:
        ``pandas.DataFrame`` with at least one row and one column.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an unknown suffix, an empty or unparsable file, or no rows.
        ImportError: pandas (or, for Parquet, pyarrow) is not installed.

    Example:
        >>> frame = read_table("data/wine.csv")   # [N rows, columns]
    """
    pd = _pandas()
    path = pathlib.Path(os.fspath(path))
    suffix = path.suffix.lower()
    expected = "a table with a header row and at least one data row"
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: unknown table suffix {suffix!r}; expected one of {', '.join(TABLE_SUFFIXES)}.")
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}; expected {expected}.")
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(
                f"Reading {path} needs pyarrow: pip install 'keras-vae[tables]' (or pip install pyarrow)."
            ) from None
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001  (pyarrow raises its own kinds)
            raise ValueError(f"{path} could not be read as Parquet ({type(err).__name__}: {err}).") from None
    else:
        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path} is empty; expected {expected}.") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            kind = suffix[1:].upper()
            raise ValueError(f"{path} could not be parsed as {kind} ({err}); expected {expected}.") from None
    if frame.shape[1] == 0:
        raise ValueError(f"{path} has no columns; expected {expected}.")
    if frame.shape[0] == 0:
        header = ", ".join(map(str, frame.columns))
        raise ValueError(f"{path} has a header ({header}) but no rows; expected {expected}.")
    return frame


def _plain(value):
    """A JSON-ready Python scalar from a numpy or pandas one."""
    return value.item() if hasattr(value, "item") else value


@dataclasses.dataclass(frozen=True)
class Column:
    """How one table column is modelled.

    Args:
        name: the column's name.
        kind: ``"numeric"``, ``"binary"`` or ``"categorical"``.
        dtype: the column's pandas dtype, as text (restored by ``decode``).
        mean: numeric columns: the training mean (original units).
        std: numeric columns: the training standard deviation (> 0).
        labels: binary and categorical columns: the values, in code order.
    """

    name: str
    kind: str
    dtype: str
    mean: float = None
    std: float = None
    labels: tuple = None

    def to_dict(self):
        out = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == "numeric":
            out.update(mean=self.mean, std=self.std)
        else:
            out["labels"] = list(self.labels)
        return out


class TableSchema:
    """The columns of a table and how each is modelled, encoded and decoded.

    Args:
        columns: list of :class:`Column` (or their dicts), in the table's order.
        source: where the table came from, named in error messages.

    Attributes:
        width: columns of the model's matrix (one per table column).
        matrix_columns: the table's column names in matrix order (numeric,
            then binary, then categorical).

    Example:
        >>> schema = TableSchema.infer(frame)        # frame: a pandas DataFrame
        >>> x = schema.encode(frame)                 # float32 [N, schema.width]
        >>> schema.decode(x).equals(frame)           # up to float32 rounding
        True
        >>> TableSchema.from_json(schema.to_json()).to_json() == schema.to_json()
        True
    """

    def __init__(self, columns, source=None):
        self.columns = [c if isinstance(c, Column) else Column(**{**c, **_labels(c)}) for c in columns]
        self.source = source
        if not self.columns:
            raise ValueError("A table schema needs at least one column.")
        for c in self.columns:
            if c.kind not in KINDS:
                raise ValueError(f"Column {c.name!r}: unknown kind {c.kind!r}; expected one of {KINDS}.")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self._where()}duplicate column names in {names}.")
        self.by_kind = {k: [c for c in self.columns if c.kind == k] for k in KINDS}
        self.matrix_columns = [c.name for k in KINDS for c in self.by_kind[k]]
        self.width = len(self.matrix_columns)

    def _where(self):
        return f"{self.source}: " if self.source else ""

    # === Inference ===

    @classmethod
    def infer(cls, frame, max_categories=MAX_CATEGORIES, categorical=(), numeric=(), source=None):
        """Chooses each column's kind from its values (see the module docstring).

        Args:
            frame: ``pandas.DataFrame``, the training rows (means and
                standard deviations are theirs).
            max_categories: integer columns with at most this many distinct
                values (and more than two) are categorical.
            categorical: names of columns to model as categorical anyway.
            numeric: names of columns to model as numeric anyway.
            source: where the table came from, named in error messages.

        Returns:
            A ``TableSchema``.

        Raises:
            ValueError: no rows, a column with missing values (all or some),
                a column with a single value, or of a type that is neither
                numbers, booleans nor text (e.g. dates).

        Example:
            >>> TableSchema.infer(pd.DataFrame({"a": [1.5, 2.0, 0.1], "b": ["x", "y", "z"]})).columns[1].kind
            'categorical'
        """
        pd = _pandas()
        where = f"{source}: " if source else ""
        if len(frame) == 0:
            raise ValueError(f"{where}the table has no rows.")
        unknown = [n for n in (*categorical, *numeric) if n not in frame.columns]
        if unknown:
            raise ValueError(f"{where}no column(s) {unknown}; the table has {list(frame.columns)}.")
        for name in frame.columns:  # Missing values first: they are what a file gets wrong most.
            missing = int(frame[name].isna().sum())
            if missing == len(frame):
                raise ValueError(f"{where}column {name!r} has no values (all {missing} missing); drop it.")
            if missing:
                raise ValueError(
                    f"{where}column {name!r} has {missing} missing value(s) of {len(frame)}; fill or drop "
                    "them first (DataFrame.fillna / dropna)."
                )
        columns = []
        for name in frame.columns:
            series = frame[name]
            dtype = str(series.dtype)
            values = series.unique()
            count = len(values)
            is_bool = pd.api.types.is_bool_dtype(series)
            is_number = pd.api.types.is_numeric_dtype(series) and not is_bool
            is_text = isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series)
            if not (is_bool or is_number or is_text):
                raise ValueError(
                    f"{where}column {name!r} has dtype {dtype}; expected numbers, booleans or text "
                    "(convert dates to numbers first)."
                )
            if count < 2 and not is_bool:
                raise ValueError(f"{where}column {name!r} holds a single value ({_plain(values[0])!r}); drop it.")
            if is_text and not isinstance(series.dtype, pd.CategoricalDtype) and name not in categorical:
                _check_text(series, count, name, where)
            if name in numeric:
                if not is_number:
                    raise ValueError(f"{where}column {name!r} of dtype {dtype} cannot be numeric.")
                kind = "numeric"
            elif name in categorical or is_text:
                kind = "binary" if count == 2 and name not in categorical else "categorical"
            elif is_bool or count == 2:
                kind = "binary"
            elif pd.api.types.is_integer_dtype(series) and count <= max_categories:
                kind = "categorical"
            else:
                kind = "numeric"
            if kind == "numeric":
                data = series.to_numpy(np.float64)
                columns.append(Column(name, kind, dtype, mean=float(data.mean()), std=float(data.std())))
                continue
            if is_bool:
                labels = (False, True)
            elif isinstance(series.dtype, pd.CategoricalDtype):
                labels = tuple(_plain(v) for v in series.cat.categories if v in set(values))
            else:
                labels = tuple(sorted((_plain(v) for v in values), key=lambda v: (str(type(v)), v)))
            columns.append(Column(name, kind, dtype, labels=labels))
        return cls(columns, source=source)

    def refit(self, frame):
        """The same schema with the numeric columns' mean and std taken from ``frame``.

        Kinds and labels stay (e.g. inferred from every row of a file, so
        that no category is unknown to one split); the standardisation is
        the training rows'.

        Args:
            frame: ``pandas.DataFrame``, the training rows.

        Returns:
            A new ``TableSchema``.
        """
        columns = []
        for c in self.columns:
            if c.kind == "numeric":
                data = frame[c.name].to_numpy(np.float64)
                std = float(data.std())
                c = dataclasses.replace(c, mean=float(data.mean()), std=std if std > 0 else c.std)
            columns.append(c)
        return TableSchema(columns, source=self.source)

    # === The model ===

    def observation(self, gaussian_scale="learned"):
        """The ``MixedObservation`` head of the model's matrix.

        Args:
            gaussian_scale: ``scale`` of the Gaussian columns' head:
                ``"learned"`` or ``"per_example"``.

        Returns:
            ``keras_vae.heads.MixedObservation`` over ``width`` columns:
            ``GaussianObservation`` (numeric), ``BernoulliObservation``
            (binary), ``CategoricalObservation`` (categorical), those present.

        Example:
            >>> model = keras_vae.VAE(schema.width, likelihood=schema.observation())
        """
        from keras_vae import heads

        parts = []
        if self.by_kind["numeric"]:
            parts.append(heads.GaussianObservation(len(self.by_kind["numeric"]), scale=gaussian_scale))
        if self.by_kind["binary"]:
            parts.append(heads.BernoulliObservation(len(self.by_kind["binary"])))
        if self.by_kind["categorical"]:
            parts.append(heads.CategoricalObservation([len(c.labels) for c in self.by_kind["categorical"]]))
        return heads.MixedObservation(parts, name="observation")

    # === Encoding and decoding ===

    def encode(self, frame):
        """The model's float matrix of a table.

        Args:
            frame: ``pandas.DataFrame`` with (at least) the schema's columns;
                other columns are ignored.

        Returns:
            float32 ``[N, width]``: standardised numeric columns, then 0/1
            binary columns, then categorical class indices.

        Raises:
            ValueError: a missing column, missing values, a value of a
                binary or categorical column that the schema does not know,
                or text in a numeric column.

        Example:
            >>> schema.encode(frame).shape
            (len(frame), schema.width)
        """
        pd = _pandas()
        absent = [c.name for c in self.columns if c.name not in frame.columns]
        if absent:
            raise ValueError(f"{self._where()}the table lacks column(s) {absent}; it has {list(frame.columns)}.")
        out = np.empty((len(frame), self.width), np.float32)
        for j, name in enumerate(self.matrix_columns):
            column = self.column(name)
            series = frame[name]
            if series.isna().any():
                count = int(series.isna().sum())
                raise ValueError(f"{self._where()}column {name!r} has {count} missing value(s); fill or drop them.")
            if column.kind == "numeric":
                try:
                    data = series.to_numpy(np.float64)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{self._where()}numeric column {name!r} holds non-numbers (dtype {series.dtype})."
                    ) from None
                out[:, j] = (data - column.mean) / column.std
                continue
            values = series.astype(object) if not pd.api.types.is_bool_dtype(series) else series
            codes = pd.Categorical(values, categories=list(column.labels)).codes
            if (codes < 0).any():
                unknown = sorted({_plain(v) for v in series[codes < 0]}, key=str)[:5]
                raise ValueError(
                    f"{self._where()}column {name!r} holds value(s) {unknown} that the schema does not know; "
                    f"it knows {list(column.labels)}."
                )
            out[:, j] = codes
        return out

    def decode(self, x):
        """A table in the original column types from the model's matrix (samples or reconstructions).

        Args:
            x: ``[N, width]`` array: numeric columns standardised, binary
                columns 0/1 or probabilities (thresholded at 0.5),
                categorical columns class indices (rounded and clipped).

        Returns:
            ``pandas.DataFrame`` with the table's columns in its order and
            dtypes: numeric columns in original units (integers rounded),
            binary and categorical columns holding the original labels.

        Example:
            >>> schema.decode(model.reconstruct(schema.encode(frame)))   # [N rows, columns]
        """
        pd = _pandas()
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.width:
            raise ValueError(f"decode needs a [N, {self.width}] matrix, got shape {x.shape}.")
        data = {}
        for j, name in enumerate(self.matrix_columns):
            column = self.column(name)
            if column.kind == "numeric":
                values = x[:, j] * column.std + column.mean
                if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(column.dtype)):
                    values = np.round(values)
                data[name] = pd.Series(values).astype(column.dtype)
                continue
            if column.kind == "binary":
                codes = (x[:, j] >= 0.5).astype(int)
            else:
                codes = np.clip(np.round(x[:, j]), 0, len(column.labels) - 1).astype(int)
            labels = np.empty(len(column.labels), object)
            labels[:] = list(column.labels)
            if column.dtype == "category":
                data[name] = pd.Series(pd.Categorical.from_codes(codes, categories=list(column.labels)))
            else:
                data[name] = pd.Series(labels[codes]).astype(column.dtype)
        return pd.DataFrame({c.name: data[c.name] for c in self.columns})

    def column(self, name):
        """The :class:`Column` named ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    # === Serialisation ===

    def get_config(self):
        """JSON-ready dict: ``{"columns": [...], "source": ...}``."""
        return {"columns": [c.to_dict() for c in self.columns], "source": self.source}

    @classmethod
    def from_config(cls, config):
        """The schema of :meth:`get_config`'s dict."""
        return cls(config["columns"], source=config.get("source"))

    def to_json(self):
        """The schema as JSON text."""
        return json.dumps(self.get_config(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text):
        """The schema of :meth:`to_json`'s text."""
        try:
            config = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not a table schema: {err}") from None
        if not isinstance(config, dict) or "columns" not in config:
            raise ValueError("not a table schema: expected a JSON object with 'columns'.")
        return cls.from_config(config)

    def save(self, path):
        """Writes :meth:`to_json` to ``path``."""
        pathlib.Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path):
        """Reads a schema written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a schema.
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No table schema at {path}.")
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from None

    def __repr__(self):
        kinds = ", ".join(f"{len(v)} {k}" for k, v in self.by_kind.items() if v)
        return f"TableSchema({kinds})"

    def __eq__(self, other):
        return isinstance(other, TableSchema) and self.get_config()["columns"] == other.get_config()["columns"]


#: A text column of at least this many rows, all distinct, is refused as an identifier.
_ID_ROWS = 20


def _check_text(series, count, name, where):
    """Refuses text columns that are numbers with a few stray strings, or identifiers."""
    pd = _pandas()
    numbers = pd.to_numeric(series, errors="coerce")
    stray = series[numbers.isna()].unique()
    if count > MAX_CATEGORIES and 0 < len(stray) <= 0.05 * len(series):
        raise ValueError(
            f"{where}column {name!r} holds numbers and {len(stray)} text value(s) such as {_plain(stray[0])!r}; "
            "fix or drop those rows (or name the column in categorical=... to model it as categories)."
        )
    if count == len(series) >= _ID_ROWS:
        raise ValueError(
            f"{where}column {name!r} has a different text value in every row (an identifier?); drop it "
            "(or name it in categorical=...)."
        )


def _labels(config):
    """A column dict's labels as a tuple (JSON gives a list)."""
    return {"labels": tuple(config["labels"])} if config.get("labels") is not None else {}
