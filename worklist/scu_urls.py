from django.urls import path

from worklist import scu_views

urlpatterns = [
    path("", scu_views.import_worklist, name="worklist_import"),
]
