"""Checkpoints: a state saved as one ``.npz`` file, safe to open even from a stranger.

A state is a tree of dicts (string keys), lists, tuples, arrays and plain values (None, bool,
int, float, str). The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

    header.json   {"format", "version", "backend", "settings", "state", "arrays"}
    a0.npy, ...   the arrays, each listed in "arrays" with its path in the state, shape and dtype

where "state" is the tree in JSON with each array replaced by {"__array__": "a0"} (a tuple by
{"__tuple__": [...]}), and "settings" are the values a resumed run must agree with
(``load(path, expect=...)`` compares them, field by field). The archive's comment is the
SHA-256 of every byte before it, so a flipped or missing byte anywhere (the arrays, the header,
the zip's own bookkeeping) is refused before anything is parsed. Nothing is unpickled
(``allow_pickle=False``): opening a checkpoint runs no code from it.

Writes are atomic: the bytes go to a temporary file in the checkpoint's folder, are flushed to
disk (fsync), renamed over the checkpoint (``os.replace``), and the folder is synced, so the
name holds the old file or the new one, never half of one. A write killed half-way (SIGKILL,
power loss) leaves its temporary file behind; the next save of that checkpoint removes it.
"""
import contextlib
import hashlib
import io
import json
import math
import numbers
import os
import tempfile
import zipfile

from . import backend, checks

FORMAT, VERSION = "minimalscore checkpoint", 1
SEAL = b"sha256:"  # the archive comment: SEAL + the 64 hex digits of the digest
_DIGITS = 64
_host = backend.host  # checkpoints are host files on either backend


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, corrupt, of another format, or written with
    settings that disagree with this run's. The message names the file and the field."""


def _child(where, key):
    """The path of ``key`` inside ``where``, as Python would index it: ``params['W'][0]``."""
    return f"{where}[{key!r}]"


def _encode(tree, where="state"):
    """(json_tree, arrays): ``tree`` as JSON-able data with each array replaced by
    {"__array__": name}, and the list of (name, path, host array)."""
    arrays = []

    def walk(node, where):
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str) or key.startswith("__"):
                    raise TypeError(f"{where}: expected string keys not starting with '__', got {key!r}")
            return {key: walk(value, _child(where, key)) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            items = [walk(item, _child(where, i)) for i, item in enumerate(node)]
            return items if isinstance(node, list) else {"__tuple__": items}
        if backend.is_array(node) or isinstance(node, _host.ndarray):
            host = backend.asnumpy(node)
            if host.dtype.kind not in "biufc":
                raise TypeError(f"{where}: expected an array of numbers, got dtype {host.dtype}")
            arrays.append((f"a{len(arrays)}", where, host))
            return {"__array__": arrays[-1][0]}
        if isinstance(node, _host.generic):  # a NumPy scalar: stored as the Python number
            return walk(node.item(), where)
        if node is None or isinstance(node, (bool, str)):
            return node
        if isinstance(node, numbers.Integral):
            return int(node)
        if isinstance(node, numbers.Real):
            if not math.isfinite(node):
                raise ValueError(f"{where}: expected a finite number, got {node}")
            return float(node)
        raise TypeError(f"{where}: expected arrays, dicts, lists, tuples, numbers, strings or None, "
                        f"got {checks.show(node)}")

    return walk(tree, where), arrays


def _decode(node, arrays):
    """The tree :func:`_encode` made ``node`` from, its arrays taken from ``arrays`` by name."""
    if isinstance(node, list):
        return [_decode(item, arrays) for item in node]
    if isinstance(node, dict):
        if list(node) == ["__array__"]:
            return arrays[node["__array__"]]
        if list(node) == ["__tuple__"]:
            return tuple(_decode(item, arrays) for item in node["__tuple__"])
        return {key: _decode(value, arrays) for key, value in node.items()}
    return node


def fingerprint(tree):
    """The SHA-256 of a tree's values (structure, dtypes, shapes and bytes), as hex."""
    json_tree, arrays = _encode(tree, "tree")
    digest = hashlib.sha256(json.dumps(json_tree).encode())
    for _, _, a in arrays:
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(_host.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def save(path, state, settings=None):
    """Write ``state`` to ``path`` (atomically, see above) with the ``settings`` a resumed run
    must agree with (a JSON-able dict); returns the path."""
    path = _path(path)
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings: expected a dict, got {checks.show(settings)}")
    tree, arrays = _encode(state)
    settings_tree, settings_arrays = _encode(settings or {}, "settings")
    if settings_arrays:
        raise TypeError(f"settings: expected plain values, got an array at {settings_arrays[0][1]}")
    header = {"format": FORMAT, "version": VERSION, "backend": backend.name,
              "settings": settings_tree, "state": tree,
              "arrays": [{"name": name, "path": where, "shape": list(a.shape), "dtype": a.dtype.str}
                         for name, where, a in arrays]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored, not compressed: float noise barely shrinks
        archive.writestr("header.json", json.dumps(header, indent=1, allow_nan=False))
        for name, _, a in arrays:
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                _host.lib.format.write_array(member, a, allow_pickle=False)
        archive.comment = SEAL + b"0" * _DIGITS  # a placeholder of the seal's length
    sealed = buffer.getvalue()[:-_DIGITS]
    _write_atomically(path, sealed + hashlib.sha256(sealed).hexdigest().encode())
    return path


def load(path, expect=None):
    """(state, settings) from the checkpoint at ``path``, arrays on the active backend.

    The digest is checked before anything is parsed, then the format and version, then each
    array against the header. ``expect``: settings this run has (a dict); each must equal the
    saved one (:func:`check_settings`). Any failure is a :class:`CheckpointError` naming the file."""
    path = _path(path)
    if expect is not None and not isinstance(expect, dict):
        raise TypeError(f"expect: expected a dict of settings, got {checks.show(expect)}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror or err})") from err
    if data[-_DIGITS - len(SEAL):-_DIGITS] != SEAL:
        raise CheckpointError(f"{path}: not a minimalscore checkpoint, or a truncated one ({len(data)} "
                              "bytes, without the SHA-256 seal a checkpoint ends with)")
    if hashlib.sha256(data[:-_DIGITS]).hexdigest().encode() != data[-_DIGITS:]:
        raise CheckpointError(f"{path}: corrupt: its bytes do not match the SHA-256 it was written with")
    try:
        header, arrays = _parse(path, data)
        state = _decode(header["state"], arrays)
        if expect is not None:
            check_settings(path, header["settings"], expect)
    except CheckpointError:
        raise
    except Exception as err:  # a sealed but malformed file (written by hand): whatever fails, say so
        reason = ("it holds pickled Python objects, which a checkpoint never does, and unpickling "
                  "could run code" if "pickle" in str(err) else f"{type(err).__name__}: {err}")
        raise CheckpointError(f"{path}: malformed checkpoint ({reason})") from err
    return state, header["settings"]


def check_settings(path, saved, expect):
    """CheckpointError naming the file and the first field of ``expect`` that differs from the
    ``saved`` settings (for a dict-valued field, the first differing key within it)."""
    if not isinstance(expect, dict):
        raise TypeError(f"expect: expected a dict of settings, got {checks.show(expect)}")
    if not isinstance(saved, dict):
        raise TypeError(f"saved: expected a dict of settings, got {checks.show(saved)}")
    for field, value in expect.items():
        now = json.loads(json.dumps(_encode(value, field)[0]))  # as stored: tuples become lists
        was = saved.get(field, "(not recorded)")
        if isinstance(was, dict) and isinstance(now, dict):
            pairs = [(_child(field, key), was.get(key, "(absent)"), now.get(key, "(absent)"))
                     for key in dict.fromkeys([*was, *now])]
        else:
            pairs = [(field, was, now)]
        for name, before, after in pairs:
            if before != after:
                raise CheckpointError(f"{path}: {name}: {_short(before)} in the checkpoint, {_short(after)} "
                                      "now; a resumed run needs the settings its checkpoint was written "
                                      "with (start a new run to change them)")


def _write_atomically(path, data):
    """Write the bytes ``data`` to ``path`` through a temporary file beside it (module docstring),
    first removing the temporary files that earlier, killed writes of ``path`` left."""
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    prefix = f".{name}."
    for leftover in os.listdir(folder):
        if leftover.startswith(prefix) and leftover.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, leftover))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    if os.name == "posix":  # the rename itself is durable once the folder's entry is on disk
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(path, data):
    """(header, {name: backend array}) from sealed checkpoint bytes."""
    npz = _host.load(io.BytesIO(data), allow_pickle=False)
    if not hasattr(npz, "files"):
        raise CheckpointError(f"{path}: not a minimalscore checkpoint (a single .npy array, not an .npz)")
    with npz:
        if "header.json" not in npz.files:
            raise CheckpointError(f"{path}: not a minimalscore checkpoint (an .npz without header.json)")
        header = json.loads(npz["header.json"])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a minimalscore checkpoint (format "
                                  f"{_short(header.get('format') if isinstance(header, dict) else header)})")
        if header.get("version") != VERSION:
            raise CheckpointError(f"{path}: format version {_short(header.get('version'))}; this "
                                  f"minimalscore reads version {VERSION}")
        listed = {entry["name"]: entry for entry in header["arrays"]}
        if set(npz.files) != set(listed) | {"header.json"}:
            raise CheckpointError(f"{path}: its arrays {sorted(npz.files)} are not the ones its header "
                                  f"lists {sorted(listed)}")
        arrays = {}
        for name, entry in listed.items():
            a = npz[name]
            if (a.dtype.kind not in "biufc" or a.dtype.str != entry["dtype"]
                    or list(a.shape) != entry["shape"]):
                raise CheckpointError(f"{path}: {entry['path']}: the header says {entry['dtype']} "
                                      f"{tuple(entry['shape'])}, the array is {a.dtype.str} {a.shape}")
            arrays[name] = backend.asarray(a, dtype=a.dtype)
    return header, arrays


def _path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {checks.show(path)}")
    return os.fspath(path)


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
