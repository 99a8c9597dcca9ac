"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

from kb.orm_state import materialize_state_dicts

# Before any model is loaded: a CPython 3.11 bug otherwise corrupts memory (kb/orm_state.py).
materialize_state_dicts()


class Base(DeclarativeBase):
    """Declarative base of every model."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
