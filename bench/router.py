# The install document's DefaultDBRouter (wfm/db_router.py) with applogs in IGNORED_APPS, as a portal
# runs it. django_db_logger (the peer) is not ignored, so its StatusLog lives on `default`, as it
# would in a portal that installed it.


class DefaultDBRouter():

    IGNORED_APPS = ('applogs',)

    def is_ignored_app(self, obj):
        return obj._meta.app_label in self.IGNORED_APPS

    def db_for_read(self, model, **hints):
        if self.is_ignored_app(model):
            return None
        return 'default'

    def db_for_write(self, model, **hints):
        if self.is_ignored_app(model):
            return None
        return 'default'

    def allow_relation(self, obj1, obj2, **hints):
        if self.is_ignored_app(obj1) or self.is_ignored_app(obj2):
            return None
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in self.IGNORED_APPS and db == 'default':
            return False

        if app_label in self.IGNORED_APPS and db != 'default':
            return True
        if db != 'default':
            return False
        return True
