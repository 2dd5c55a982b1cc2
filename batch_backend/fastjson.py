"""JSON for the CLI's hot path, built on the C accelerator ``_json`` directly.

Why: ``import json`` pulls in ``re`` and ``enum`` (about 10 ms here), two
thirds of a ``squeue`` call's budget. The C scanner and string encoder that
``json`` itself uses are importable on their own; this module wires them up
the same way ``json.decoder``/``json.encoder`` do, and falls back to ``json``
where the accelerator is missing.
"""

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self):
        self.memo = {}
        nan, inf = float("nan"), float("inf")
        self.parse_constant = {"NaN": nan, "Infinity": inf, "-Infinity": -inf}.__getitem__


_scanner = _json.make_scanner(_ScanContext()) if _json is not None else None
_WS = " \t\n\r"


def loads(data):
    """Decode a JSON document (str or UTF-8 bytes); ValueError if malformed."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    if _scanner is None:
        import json
        return json.loads(data)
    start = len(data) - len(data.lstrip(_WS))
    try:
        obj, end = _scanner(data, start)
    except StopIteration as e:
        raise ValueError(f"malformed JSON at position {e.value}") from None
    if data[end:].strip(_WS):
        raise ValueError(f"extra data after JSON at position {end}")
    return obj


def dumps(obj):
    """Encode dicts, lists, strings, numbers, booleans and None as compact JSON."""
    if _json is None:
        import json
        return json.dumps(obj, separators=(",", ":"))
    out = []
    _encode(obj, out.append, _json.encode_basestring_ascii)
    return "".join(out)


def _encode(obj, emit, quote):
    if isinstance(obj, str):
        emit(quote(obj))
    elif obj is None:
        emit("null")
    elif obj is True:
        emit("true")
    elif obj is False:
        emit("false")
    elif isinstance(obj, int):
        emit(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity are not JSON")
        emit(float.__repr__(obj))
    elif isinstance(obj, dict):
        emit("{")
        first = True
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, not {type(k).__name__}")
            if not first:
                emit(",")
            first = False
            emit(quote(k))
            emit(":")
            _encode(v, emit, quote)
        emit("}")
    elif isinstance(obj, (list, tuple)):
        emit("[")
        for i, v in enumerate(obj):
            if i:
                emit(",")
            _encode(v, emit, quote)
        emit("]")
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
