"""Work around a CPython 3.11 use-after-free reached through SQLAlchemy's instance states.

CPython 3.11 keeps an object's attributes in an inline values array and builds its ``__dict__``
only when a store needs one. If allocating that dict starts a garbage collection, and the
collection runs a weakref callback that stores attributes on the same object, the callback builds
a second dict on the same values and frees them; the outer store then installs a dict pointing at
freed memory. SQLAlchemy's ``InstanceState._cleanup`` is exactly such a callback (it stores
``session_id`` and ``_strong_obj`` on its state), and loading thousands of campaigns crashed
``flask reindex`` with "free(): invalid size" or SIGSEGV, or turned a list attribute into a
weakref (bench/results/opencc_crash.txt: valgrind trace and a 20-line reproducer without
SQLAlchemy; 3.10, 3.12 and 3.13 are not affected).

Building each state's ``__dict__`` in its constructor, before its weakref and callback exist,
means no store on a state ever goes through that path. The cost is one ordinary dict per loaded
object instead of the inline values.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy.orm.state import InstanceState

# The interpreters with inline values and the bug (3.12 reworked instance dicts).
AFFECTED = sys.version_info[:2] == (3, 11)


def materialize_state_dicts() -> bool:
    """Make every new InstanceState build its ``__dict__`` up front; return whether it applied.

    Idempotent; does nothing on interpreters without the bug.
    """
    if not AFFECTED:
        return False
    original = InstanceState.__init__
    if getattr(original, "_kb_materializes_dict", False):
        return True

    def init_with_dict(self: InstanceState[Any], obj: Any, manager: Any) -> None:
        self.__dict__  # noqa: B018  # builds the dict now, while no callback can run on it
        original(self, obj, manager)

    init_with_dict._kb_materializes_dict = True  # type: ignore[attr-defined]
    InstanceState.__init__ = init_with_dict  # type: ignore[method-assign]
    return True
