import logging

from django.db import models
from django.utils.translation import gettext_lazy as _

from .compat import HAS_VIEW_PERMISSION, JSONField, index

LEVEL_CHOICES = [
    (logging.DEBUG, "DEBUG"),
    (logging.INFO, "INFO"),
    (logging.WARNING, "WARNING"),
    (logging.ERROR, "ERROR"),
    (logging.CRITICAL, "CRITICAL"),
]


class LogRecord(models.Model):
    id = models.BigAutoField(_("ID"), primary_key=True)
    # The record's own time (LogRecord.created), not the time the writer inserted it.
    created = models.DateTimeField(_("time"))
    # logging's numeric level, so "WARNING and above" is a range; names via get_level_display().
    level = models.PositiveSmallIntegerField(_("level"), choices=LEVEL_CHOICES)
    logger = models.CharField(_("logger"), max_length=255)
    module = models.CharField(_("module"), max_length=255, blank=True, default="")
    func = models.CharField(_("function"), max_length=255, blank=True, default="")
    lineno = models.PositiveIntegerField(_("line"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True, default="")
    traceback = models.TextField(_("traceback"), blank=True, default="")
    ip = models.CharField(_("IP"), max_length=64, blank=True, default="")
    # Text, not a foreign key: users live in the portal's default database.
    user = models.CharField(_("user"), max_length=255, blank=True, default="")
    request_id = models.CharField(_("request id"), max_length=64, blank=True, default="")
    host = models.CharField(_("host"), max_length=255, blank=True, default="")
    process = models.PositiveIntegerField(_("process"), null=True, blank=True)
    extra = JSONField(_("extra"), default=dict, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("log record")
        verbose_name_plural = _("log records")
        # The indexes are created by the migrations in SQL, identical on every Django version;
        # these declarations keep Django's idea of the model in step (compat.index leaves out
        # what an old Django cannot declare).
        indexes = [
            # Keyset pagination of the viewer: newest first, ties broken by id.
            index(["created", "id"], "applogs_created_id"),
            index(["level", "created", "id"], "applogs_level_created"),
            # A logger and its children (logger = 'x' OR logger LIKE 'x.%'): pattern ops so the
            # prefix can use the index under any collation (migration 0002, docs/benchmarks.md).
            index(["logger", "created", "id"], "applogs_logger_prefix",
                  opclasses=["varchar_pattern_ops", "timestamptz_ops", "int8_ops"]),
            index(["request_id"], "applogs_request_id", condition=~models.Q(request_id="")),
            # Text search (message__icontains) has a trigram GIN index on UPPER(message), created by
            # migration 0003 in SQL: declaring it here would need OpClass, which only works with
            # django.contrib.postgres in the portal's INSTALLED_APPS.
        ]
        # Django 2.1+ has the view permission built in; before, it is declared here.
        permissions = [] if HAS_VIEW_PERMISSION else [("view_logrecord", "Can view log record")]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.get_level_display()} {self.logger}: {self.message[:80]}"
