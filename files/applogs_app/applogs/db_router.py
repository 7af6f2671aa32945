"""LogsDBRouter: the applogs models live on settings.APPLOGS_DATABASE and nowhere else."""
from . import conf

APP_LABEL = "applogs"


class LogsDBRouter:
    """Answers only for applogs models and for the applogs alias; None otherwise, so the order
    relative to a portal router (the document's DefaultDBRouter) does not matter."""

    @staticmethod
    def _alias():
        return conf.get("DATABASE")

    def db_for_read(self, model, **hints):
        if model._meta.app_label == APP_LABEL:
            return self._alias()
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        # Relations never cross into or out of the log database.
        a = obj1._meta.app_label == APP_LABEL
        b = obj2._meta.app_label == APP_LABEL
        if a or b:
            return a and b
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == APP_LABEL:
            return db == self._alias()
        if db == self._alias():
            return False
        return None
