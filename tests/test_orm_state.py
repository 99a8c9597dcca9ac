"""The CPython 3.11 workaround in kb/orm_state.py is installed wherever the models are.

The crash it prevents (a garbage collection inside an attribute store running SQLAlchemy's weakref
callback on the same state) depends on heap layout and collector timing: the reproduction is
bench/results/opencc_crash.txt's script over 10,000 campaigns, crashing 3 of 3 runs without the
workaround and none with it. Here: that importing the app's extensions applies it, once.
"""

from __future__ import annotations

import sys

from sqlalchemy.orm.state import InstanceState

import kb.extensions  # noqa: F401  # applies the workaround, as every use of the models does
from kb.orm_state import AFFECTED, materialize_state_dicts


def test_the_workaround_is_installed_on_the_affected_interpreter_only() -> None:
    assert (sys.version_info[:2] == (3, 11)) == AFFECTED
    assert getattr(InstanceState.__init__, "_kb_materializes_dict", False) is AFFECTED


def test_applying_it_again_does_not_wrap_twice() -> None:
    before = InstanceState.__init__
    assert materialize_state_dicts() is AFFECTED
    assert InstanceState.__init__ is before
