"""Data from where users keep it: tables, .npy/.npz arrays, image folders, tensorflow-datasets names.

Every source goes through ``keras_vae.datasets.load_data`` (the API) and
``keras-vae train --dataset PATH`` (the command line). Malformed files each
give one ValueError naming the file (one ``error:`` line, exit 2, on the
command line).
"""

import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from keras_vae import datasets  # noqa: E402
from keras_vae import tables  # noqa: E402
from keras_vae.tables import TableSchema  # noqa: E402


def _mixed_frame(n=60, seed=0):
    """A table of every column type: floats, ints, few-valued ints, strings, two-valued strings, bools, categories."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "height": rng.normal(170.0, 10.0, n),
            "age": rng.integers(18, 90, n),
            "stars": rng.integers(1, 6, n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "smoker": rng.choice(["yes", "no"], n),
            "member": rng.random(n) < 0.3,
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"]),
            "score": rng.random(n).astype("float32"),
        }
    )


def _clustered_frame(n=400, seed=0):
    """Three clusters: the category and the binary column are predictable from the numeric columns."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 3, n)
    centers = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    xy = centers[cluster] + rng.normal(0.0, 0.5, (n, 2))
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "kind": np.array(["alpha", "beta", "gamma"])[cluster],
            "flag": np.where(cluster == 2, "on", "off"),
        }
    )


# ------------------------------------------------------------------ the schema


def test_schema_kinds_and_round_trip_equal_the_table():
    frame = _mixed_frame()
    schema = TableSchema.infer(frame)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "height": "numeric",
        "age": "numeric",
        "stars": "categorical",
        "city": "categorical",
        "smoker": "binary",
        "member": "binary",
        "size": "categorical",
        "score": "numeric",
    }
    x = schema.encode(frame)
    assert x.shape == (60, 8) and x.dtype == np.float32
    # Numeric columns are standardised with the stored mean and std.
    j = schema.matrix_columns.index("height")
    np.testing.assert_allclose(x[:, j].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(x[:, j].std(), 1.0, atol=1e-5)
    assert schema.column("height").std == pytest.approx(frame["height"].std(ddof=0))
    # Through JSON and back, then decoded: the original table, column types and all.
    again = TableSchema.from_json(schema.to_json())
    assert again == schema
    decoded = again.decode(x)
    assert list(decoded.columns) == list(frame.columns)
    assert list(decoded.dtypes) == list(frame.dtypes)
    pd.testing.assert_frame_equal(decoded, frame, check_exact=False, rtol=1e-5, atol=1e-5)


def test_schema_builds_the_mixed_head_in_matrix_order():
    schema = TableSchema.infer(_mixed_frame())
    head = schema.observation()
    assert [type(c).__name__ for c in head.components] == [
        "GaussianObservation",
        "BernoulliObservation",
        "CategoricalObservation",
    ]
    assert [c.event_size for c in head.components] == [3, 2, 3]
    assert head.components[2].num_classes == [5, 3, 3]  # stars 1..5, city, size
    assert schema.width == head.event_size == 8


def test_decode_thresholds_probabilities_and_clips_indices():
    frame = _clustered_frame(20)
    schema = TableSchema.infer(frame)
    x = schema.encode(frame)
    j_flag, j_kind = schema.matrix_columns.index("flag"), schema.matrix_columns.index("kind")
    x[:, j_flag] = np.where(x[:, j_flag] > 0.5, 0.8, 0.2)  # probabilities, as a reconstruction's mean
    x[0, j_kind] = 7.0  # out of range: the last class
    decoded = schema.decode(x)
    assert (decoded["flag"] == frame["flag"]).all()
    assert decoded["kind"][0] == "gamma"


def test_overrides_and_encode_errors():
    frame = _mixed_frame()
    schema = TableSchema.infer(frame, categorical=["age"], numeric=["stars"])
    assert schema.column("age").kind == "categorical" and schema.column("stars").kind == "numeric"
    schema = TableSchema.infer(frame)
    with pytest.raises(ValueError, match=r"'city' holds value\(s\) \['Rome'\]"):
        schema.encode(frame.assign(city="Rome"))
    with pytest.raises(ValueError, match="lacks column"):
        schema.encode(frame.drop(columns="age"))


# ------------------------------------------------------------------ table files


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_files_load_split_and_decode(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    frame = _mixed_frame(50).drop(columns=["size", "score"])  # CSV keeps no category or float32 dtype
    path = tmp_path / f"table{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    train = datasets.load_data(path, "train")
    test = datasets.load_data(path, "test")
    assert train.kind == "table" and (len(train.x), len(test.x)) == (40, 10)
    # The schema is the training rows'; the test rows are encoded with it.
    assert test.schema == train.schema
    assert train.schema.column("height").mean == pytest.approx(train.frame["height"].mean())
    rows = pd.concat([train.frame, test.frame]).sort_values("height").reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, frame.sort_values("height").reset_index(drop=True), check_dtype=False)
    decoded = test.schema.decode(test.x)
    pd.testing.assert_frame_equal(decoded, test.frame, check_exact=False, rtol=1e-5, atol=1e-4)


def test_a_category_seen_in_one_split_only_is_known_to_both(tmp_path):
    frame = _clustered_frame(50)
    frame.loc[7, "kind"] = "rare"  # One row: in one split only.
    frame.to_csv(tmp_path / "rare.csv", index=False)
    train, test = datasets.load_data(tmp_path / "rare.csv", "train"), datasets.load_data(tmp_path / "rare.csv", "test")
    assert train.schema == test.schema and "rare" in train.schema.column("kind").labels
    rows = pd.concat([train.frame, test.frame])
    assert (rows["kind"] == "rare").sum() == 1
    # The standardisation is still the training rows'.
    assert train.schema.column("x").mean == pytest.approx(train.frame["x"].mean())


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.csv", "", r"empty\.csv is empty"),
        ("header.csv", "a,b,c\n", r"header\.csv has a header \(a, b, c\) but no rows"),
        ("blank.csv", "a,b\n1,\n2,\n3,\n", r"blank\.csv: column 'b' has no values"),
        ("holes.csv", "a,b\n1,x\n2,\n3,y\n4,x\n", r"holes\.csv: column 'b' has 1 missing value"),
        ("const.csv", "a,b\n1,x\n2,x\n3,x\n", r"const\.csv: column 'b' holds a single value"),
        ("one.csv", "a,b\n1,x\n", r"one\.csv: 1 example\(s\); need at least 2"),
        (
            "stray.csv",
            "v\n" + "\n".join(str(i) for i in range(30)) + "\nunknown\n",
            r"stray\.csv: column 'v' holds numbers and 1 text value\(s\) such as 'unknown'",
        ),
        (
            "ids.csv",
            "id,v\n" + "\n".join(f"row{i},{i % 3}" for i in range(25)) + "\n",
            r"ids\.csv: column 'id' has a different text value in every row",
        ),
    ],
)
def test_each_malformed_table_gives_one_clear_error(tmp_path, name, text, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_data(_write(tmp_path / name, text))


def test_bad_parquet_and_schema_files(tmp_path):
    pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match=r"bad\.parquet could not be read as Parquet"):
        datasets.load_data(_write(tmp_path / "bad.parquet", "not parquet"))
    with pytest.raises(ValueError, match=r"schema\.json: not a table schema"):
        TableSchema.load(_write(tmp_path / "schema.json", json.dumps([1, 2])))
    with pytest.raises(FileNotFoundError, match="No such file"):
        datasets.load_data(tmp_path / "missing.csv")


def test_pyarrow_missing_is_named(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match="needs pyarrow"):
        tables.read_table(_write(tmp_path / "t.parquet", "x"))


# ------------------------------------------------------------------ arrays


def test_npz_of_images_keeps_their_shape_and_splits(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (12, 6, 5, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    path = tmp_path / "images.npz"
    np.savez(path, x_train=x_train, x_test=x_test, y_train=np.arange(12) % 3, y_test=np.arange(4) % 3)
    train = datasets.load_data(path, "train")
    test = datasets.load_data(path, "test")
    assert train.input_shape == (6, 5, 3) and train.image_shape == (6, 5, 3)
    np.testing.assert_allclose(train.x, x_train / 255.0, atol=1e-7)
    np.testing.assert_array_equal(test.y, np.arange(4) % 3)


def test_one_array_is_split_into_disjoint_rows(tmp_path):
    x = np.linspace(0.0, 1.0, 10 * 4, dtype=np.float32).reshape(10, 2, 2)
    np.save(tmp_path / "x.npy", x)
    train = datasets.load_data(tmp_path / "x.npy", "train")
    test = datasets.load_data(tmp_path / "x.npy", "test")
    assert (len(train.x), len(test.x)) == (8, 2) and train.y is None
    rows = np.concatenate([train.x, test.x])
    np.testing.assert_array_equal(np.sort(rows[:, 0, 0]), x[:, 0, 0])
    assert len(datasets.load_data(tmp_path / "x.npy", limit=3).x) == 3


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("empty.npy", lambda p: p.write_bytes(b""), r"empty\.npy is empty"),
        ("text.npz", lambda p: p.write_text("hello"), r"text\.npz is not a .npz"),
        ("obj.npy", lambda p: np.save(p, np.array([{"a": 1}] * 3), allow_pickle=True), r"obj\.npy could not be read"),
        ("flat.npy", lambda p: np.save(p, np.zeros(5)), r"flat\.npy: the array has shape \(5,\)"),
        ("many.npz", lambda p: np.savez(p, a=np.zeros((3, 2)), b=np.zeros((3, 2))), r"many\.npz holds 2 arrays"),
        ("half.npz", lambda p: np.savez(p, x_train=np.zeros((3, 2))), r"half\.npz has no x_test"),
        ("labels.npz", lambda p: np.savez(p, x=np.zeros((3, 2)), y=np.zeros(2)), r"labels\.npz: labels of x"),
        ("grey.npy", lambda p: np.save(p, np.full((3, 2), 7.5)), r"grey\.npy: float64 pixel values .* ambiguous"),
    ],
)
def test_each_malformed_array_file_gives_one_clear_error(tmp_path, name, make, message):
    make(tmp_path / name)
    with pytest.raises(ValueError, match=message):
        datasets.load_data(tmp_path / name)


# ------------------------------------------------------------------ image folders


def _png(path, size=(6, 5), mode="L", value=None, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8) if value is None else np.full(shape, value, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)


def test_image_folder_labels_match_subfolders(tmp_path):
    from keras_vae import images

    # Each class's images have their own constant grey level, so labels can be checked against pixels.
    levels = {"ant": 10, "bee": 120, "cat": 250}
    for name, level in levels.items():
        for i in range(4):
            _png(tmp_path / "pics" / name / f"{i}.png", value=level)
    data = images.load_image_folder(tmp_path / "pics")
    assert data["class_names"] == ["ant", "bee", "cat"]
    assert data["x"].shape == (12, 6, 5, 1)
    expected = np.array([levels[data["class_names"][label]] for label in data["y"]]) / 255.0
    np.testing.assert_allclose(data["x"][:, 0, 0, 0], expected, atol=1e-6)
    for path, label in zip(data["files"], data["y"]):
        assert f"/{data['class_names'][label]}/" in path
    train = datasets.load_data(tmp_path / "pics", "train")
    test = datasets.load_data(tmp_path / "pics", "test")
    assert (len(train.x), len(test.x)) == (10, 2) and train.class_names == ("ant", "bee", "cat")
    resized = images.load_image_folder(tmp_path / "pics", image_size=(4, 4), color_mode="rgb")
    assert resized["x"].shape == (12, 4, 4, 3)


def test_image_folder_errors(tmp_path):
    from keras_vae import images

    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty holds no images"):
        datasets.load_data(tmp_path / "empty")
    _png(tmp_path / "mixed" / "a.png", size=(6, 5))
    _png(tmp_path / "mixed" / "b.png", size=(8, 8))
    with pytest.raises(ValueError, match=r"mixed holds images of 2 sizes .*--image-size"):
        datasets.load_data(tmp_path / "mixed")
    assert images.load_image_folder(tmp_path / "mixed", image_size=(6, 6))["x"].shape == (2, 6, 6, 1)
    _png(tmp_path / "broken" / "a.png")
    _write(tmp_path / "broken" / "b.png", "not an image")
    with pytest.raises(ValueError, match=r"b\.png is not a readable image"):
        datasets.load_data(tmp_path / "broken")
    with pytest.raises(ValueError, match="unknown data file type"):
        datasets.load_data(_write(tmp_path / "notes.txt", "hello"))


# ------------------------------------------------------------------ tensorflow-datasets names


def test_tfds_name_loads_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        data = datasets.load_data("kmnist", "test", data_dir=str(tmp_path))
        assert data.kind == "images" and data.x.shape == (6, 28, 28, 1)
        assert data.x.dtype == np.float32 and 0.0 <= data.x.min() and data.x.max() <= 1.0
        assert data.y.shape == (6,) and data.y.dtype == np.int32
        assert len(datasets.load_data("kmnist", "train", data_dir=str(tmp_path), limit=3).x) == 3


def test_unknown_name_is_neither_file_nor_tfds():
    with pytest.raises(ValueError, match="neither a file, a folder nor a tensorflow-datasets name"):
        datasets.load_data("no_such_dataset_xyz")


# ------------------------------------------------------------------ a trained table model


def test_trained_table_model_beats_the_majority_class(tmp_path):
    import keras

    import keras_vae

    frame = _clustered_frame(600)
    path = tmp_path / "clusters.csv"
    frame.to_csv(path, index=False)
    train, test = datasets.load_data(path, "train"), datasets.load_data(path, "test")
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(
        train.schema.width, latent_dim=2, hidden_dims=(32,), likelihood=train.schema.observation(), seed=0
    )
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(train.x, epochs=10, batch_size=64, verbose=0)
    decoded = test.schema.decode(keras.ops.convert_to_numpy(model.reconstruct(test.x)))
    for name in ("kind", "flag"):
        accuracy = float((decoded[name] == test.frame[name]).mean())
        majority = float(test.frame[name].value_counts(normalize=True).iloc[0])
        assert accuracy > majority + 0.1, (name, accuracy, majority)
    rmse = float(np.sqrt(((decoded["x"] - test.frame["x"]) ** 2).mean()))
    assert rmse < 0.5 * test.frame["x"].std()


# ------------------------------------------------------------------ the command line


def _cli(argv, capsys):
    from keras_vae.cli import main

    status = main([*argv, "--quiet"] if argv[0] in ("train",) else argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def image_npz(tmp_path_factory):
    """8x8 digits as 8-bit images [N, 8, 8, 1] in the Keras layout."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images / 16.0 * 255.0).astype(np.uint8)[..., None]
    path = tmp_path_factory.mktemp("npz") / "digits.npz"
    np.savez(path, x_train=x[:200], x_test=x[200:260], y_train=digits.target[:200], y_test=digits.target[200:260])
    return path


@pytest.mark.parametrize(
    "network", [pytest.param([], id="mlp"), pytest.param(["--preset", "conv_mnist"], id="conv", marks=pytest.mark.slow)]
)
def test_cli_trains_an_image_model_and_the_other_commands_use_it(image_npz, tmp_path, capsys, network):
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(image_npz), *network, "--likelihood", "discretized_logistic"]
    if not network:  # A preset sets its own layers.
        argv += ["--hidden-dims", "32", "--latent-dims", "4"]
    status, _, err = _cli([*argv, "--epochs", "1", "--batch-size", "50", "--out", str(out)], capsys)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert test["elbo_bits_per_dim"] == pytest.approx(-test["elbo"] / (64 * np.log(2.0)))
    from keras_vae.cli import loading

    model = loading.load_model(out / "model.keras")
    assert tuple(model.input_shape) == (8, 8, 1)
    assert type(model.observation).__name__ == "DiscretizedLogisticObservation"
    model_path = str(out / "model.keras")
    if network:  # evaluate reads the data as plot does (cli.data.load); it runs in the slow suite.
        evaluate = ["evaluate", model_path, "--dataset", str(image_npz), "--k", "4", "--limit", "20"]
        status, stdout, err = _cli(evaluate, capsys)
        assert status == 0 and "log p(x)" in stdout, err
    assert _cli(["sample", model_path, "--n", "4", "--out", str(tmp_path / "s.png")], capsys)[0] == 0
    plot = ["plot", model_path, "--kind", "reconstructions", "--dataset", str(image_npz)]
    plot += ["--out", str(tmp_path / "r.png")]
    assert _cli(plot, capsys)[0] == 0
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0


@pytest.mark.slow
def test_cli_flat_named_data_become_images_for_a_conv_preset(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "conv_mnist", "--epochs", "1", "--limit", "100", "--out", str(out)]
    status, _, err = _cli(argv, capsys)
    assert status == 0, err
    from keras_vae.cli import loading

    assert tuple(loading.load_model(out / "model.keras").input_shape) == (8, 8, 1)
    status, stdout, err = _cli(["evaluate", str(out / "model.keras"), "--k", "2", "--limit", "10"], capsys)
    assert status == 0, err


def test_cli_trains_a_table_model_and_writes_decoded_rows(tmp_path, capsys):
    frame = _clustered_frame(200)
    csv = tmp_path / "clusters.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(csv), "--latent-dims", "2", "--hidden-dims", "16", "--epochs", "2"]
    status, _, err = _cli([*argv, "--out", str(out)], capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.keras", "metrics.json", "history.json", "schema.json", "samples.csv", "reconstructions.csv"]
    )
    schema = TableSchema.load(out / "schema.json")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"x": "numeric", "y": "numeric", "kind": "categorical", "flag": "binary"}
    samples = pd.read_csv(out / "samples.csv")
    assert list(samples.columns) == list(frame.columns) and len(samples) == 100
    assert set(samples["kind"]) <= {"alpha", "beta", "gamma"} and set(samples["flag"]) <= {"on", "off"}
    # evaluate encodes the table with the schema beside the model (or --schema).
    (out / "schema.json").rename(tmp_path / "elsewhere.json")
    evaluate = ["evaluate", str(out / "model.keras"), "--dataset", str(csv), "--k", "2"]
    status, _, err = _cli(evaluate, capsys)
    assert status == 2 and "no table schema at" in err
    status, stdout, err = _cli([*evaluate, "--schema", str(tmp_path / "elsewhere.json")], capsys)
    assert status == 0 and "(40 examples)" in stdout, err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("rows.csv", "a,b\n", "rows.csv has a header (a, b) but no rows"),
        ("blank.csv", "a,b\n1,\n2,\n", "blank.csv: column 'b' has no values"),
        ("empty.npz", "", "empty.npz is empty"),
        ("folder", None, "folder holds no images"),
    ],
)
def test_cli_malformed_data_gives_one_error_line(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    argv = ["train", "--dataset", str(path), "--epochs", "1", "--out", str(tmp_path / "run")]
    status, stdout, err = _cli(argv, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cli_names_match_the_package():
    from keras_vae import presets
    from keras_vae.cli import options
    from keras_vae.heads import observations

    assert options.PRESETS == tuple(presets.PRESETS)
    assert set(options.LIKELIHOODS) == set(observations._OBSERVATIONS)


def test_data_options_are_json_settings_so_a_run_resumes():
    from keras_vae.cli import make_parser
    from keras_vae.cli import train

    argv = ["train", "--dataset", "pics", "--image-size", "6,6", "--color-mode", "rgb", "--preset", "conv_mnist"]
    settings = train.run_settings(make_parser().parse_args(argv))
    assert json.loads(json.dumps(settings)) == settings
