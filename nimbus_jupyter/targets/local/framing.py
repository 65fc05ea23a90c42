"""Length-prefixed pickle frames between the local server and its workers (one trusted process pair)."""
from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

_HEADER = struct.Struct("!I")


def encode(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def read_frame(stream: BinaryIO) -> Any:
    """Blocking read of one frame; ``EOFError`` when the other side closed."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


async def read_frame_async(reader: Any) -> Any:
    head = await reader.readexactly(_HEADER.size)
    (size,) = _HEADER.unpack(head)
    return pickle.loads(await reader.readexactly(size))
