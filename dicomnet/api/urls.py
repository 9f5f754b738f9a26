"""Mounted at /api/dental/dicom/. A plain list: other modules append their own lines."""

from django.urls import path

from dicomnet.api import receive, views

urlpatterns = [
    path("receive", receive.ReceiveView.as_view(), name="api_dicom_receive"),
    path("query", views.QueryView.as_view(), name="api_dicom_query"),
    path("import", views.ImportView.as_view(), name="api_dicom_import"),
    path("jobs/<int:pk>", views.JobView.as_view(), name="api_dicom_job"),
    path("jobs/<int:pk>/cancel", views.JobCancelView.as_view(), name="api_dicom_job_cancel"),
]
