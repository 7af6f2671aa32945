from django.db import models

from xlsexport.compat import JSONField


class Category(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self):
        return self.name


class Item(models.Model):
    STATUS_CHOICES = [(1, "Open"), (2, "Closed")]

    name = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField(choices=STATUS_CHOICES, default=1)
    created = models.DateTimeField()
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    data = JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name
