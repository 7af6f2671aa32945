from django.contrib import admin
from django.utils.html import format_html

from xlsexport.actions import export_to_xlsx
from xlsexport.compat import display

from .models import Item


class ItemAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "created", "category", "amount", "shout")
    actions = [export_to_xlsx]

    @display(description="Loud name")
    def shout(self, obj):
        return format_html("<b>{}</b>", obj.name.upper())


class ItemExportFieldsAdmin(ItemAdmin):
    xlsexport_fields = ("id", "name", "data")
    xlsexport_max_rows = 3


class ItemProxy(Item):
    class Meta:
        proxy = True


admin.site.register(Item, ItemAdmin)
admin.site.register(ItemProxy, ItemExportFieldsAdmin)
