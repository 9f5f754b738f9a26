"""The viewer's JSON endpoints, mounted at /viewer/api/ by nexrel.urls."""

from django.urls import path

from dicomnet.viewer import views

urlpatterns = [
    path(
        "instances/<str:sop_instance_uid>/annotations",
        views.instance_annotations,
        name="viewer_instance_annotations",
    ),
    path("annotations/<int:pk>", views.annotation, name="viewer_annotation"),
]
