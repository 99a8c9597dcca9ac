"""Campaign KB: a knowledge base of campaign retrospectives (活动复盘) for marketing and ops teams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: settings from defaults, then ``KB_*`` variables, then ``config``."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        instance_path=str(ROOT / "instance"),
    )
    from kb import access, api, cli, database, errors, jsonio, logs
    from kb import config as settings
    from kb.accounts import admin as admin_views
    from kb.accounts import views as auth_views
    from kb.campaigns import api as _campaigns_api  # noqa: F401  # adds its routes to api.bp
    from kb.campaigns import history_views, views
    from kb.drafts import api as _drafts_api  # noqa: F401  # adds its routes to api.bp
    from kb.drafts import views as draft_views
    from kb.extensions import csrf
    from kb.insights import api as _insights_api  # noqa: F401  # adds its routes to api.bp
    from kb.insights import views as insights
    from kb.ops import views as ops
    from kb.searching import api as _searching_api  # noqa: F401  # adds its routes to api.bp
    from kb.searching import worker as index_worker
    from kb.transfer import api as _transfer_api  # noqa: F401  # adds its routes to api.bp
    from kb.transfer import views as transfer
    from kb.web import security
    from kb.web.templating import init_app as init_templating

    app.json = jsonio.StrictJSONProvider(app)
    settings.load_config(app, config)
    logs.init_app(app)
    database.init_app(app)
    csrf.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    access.init_app(app)
    init_templating(app)
    cli.init_app(app)
    index_worker.init_app(app)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(admin_views.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(history_views.bp)
    app.register_blueprint(draft_views.bp)
    app.register_blueprint(transfer.bp)
    app.register_blueprint(insights.bp)
    app.register_blueprint(ops.bp)
    # Last: the feature modules imported above have added their endpoints to it.
    app.register_blueprint(api.bp)
    return app
